/* SPDX-License-Identifier: MIT */
/*
 * What this binary is: its version (git describe at build time, or the
 * release's fallback) and what it was built with. No state.
 */
#ifndef HM_VERSION_H
#define HM_VERSION_H

/*
 * The version: `git describe --always --dirty` of the tree it was built
 * from (the GNUmakefile passes it as HM_VERSION), else "0.1.0". A static
 * string; never NULL.
 */
const char *hm_version(void);

/*
 * One line naming the optional parts and the libraries this binary was
 * built with, e.g. "eBPF probe: yes, TLS: OpenSSL 3.0.19 27 Jan 2026,
 * libevent 2.1.12-stable, lz4 1.9.4". A static string without a newline;
 * never NULL.
 */
const char *hm_version_build(void);

#endif

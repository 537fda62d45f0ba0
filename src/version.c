// SPDX-License-Identifier: MIT
/* The version and build line of `hybridmig --version` (src/version.h). */
#include "src/version.h"

#include <event2/event.h>
#include <lz4.h>
#include <openssl/opensslv.h>

/* a build outside a git checkout (a release tarball), or a compile without the makefile */
#ifndef HM_VERSION
#define HM_VERSION "0.1.0"
#endif

/* build-time versions: what the headers said, so what the binary was written against */
#define BUILD_LIBS                                                                                 \
	"TLS: " OPENSSL_VERSION_TEXT ", libevent " LIBEVENT_VERSION ", lz4 " LZ4_VERSION_STRING

const char *hm_version(void)
{
	return HM_VERSION;
}

const char *hm_version_build(void)
{
	/* HM_BPF=0 builds leave the eBPF probe out (GNUmakefile); trace then uses the harvest */
	return HM_BPF ? "eBPF probe: yes, " BUILD_LIBS : "eBPF probe: no, " BUILD_LIBS;
}

// SPDX-License-Identifier: MIT
#include "src/vmstate.h"

#include <errno.h>
#include <string.h>
#include "src/proto.h"

void vmstate_init(struct vmstate_buf *b, uint8_t *buf, size_t cap)
{
	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	b->overflow = false;
}

void vmstate_put(struct vmstate_buf *b, uint32_t type, uint32_t cpu, const void *data, uint32_t len)
{
	size_t padded = ALIGN_UP((size_t)len, 8);

	if (b->overflow || b->cap - b->len < VMSTATE_REC_HDR + padded) {
		b->overflow = true;
		return;
	}
	proto_put_le32(b->buf + b->len, type);
	proto_put_le32(b->buf + b->len + 4, cpu);
	proto_put_le32(b->buf + b->len + 8, len);
	proto_put_le32(b->buf + b->len + 12, 0);
	if (len)
		memcpy(b->buf + b->len + VMSTATE_REC_HDR, data, len);
	memset(b->buf + b->len + VMSTATE_REC_HDR + len, 0, padded - len);
	b->len += VMSTATE_REC_HDR + padded;
}

int vmstate_next(const uint8_t *buf, size_t len, size_t *off, struct vmstate_rec *r,
		 const char **why)
{
	size_t padded;

	if (*off == len)
		return 0;
	if (*off > len || len - *off < VMSTATE_REC_HDR) {
		*why = "truncated state record";
		return -EBADMSG;
	}
	r->type = proto_get_le32(buf + *off);
	r->cpu = proto_get_le32(buf + *off + 4);
	r->len = proto_get_le32(buf + *off + 8);
	padded = ALIGN_UP((size_t)r->len, 8);
	if (padded < r->len || len - *off - VMSTATE_REC_HDR < padded) {
		*why = "state record runs past the frame";
		return -EBADMSG;
	}
	r->data = buf + *off + VMSTATE_REC_HDR;
	*off += VMSTATE_REC_HDR + padded;
	return 1;
}

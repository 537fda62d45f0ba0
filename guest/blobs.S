/* The test-guest images, built into $(O)/guest/NAME.bin and embedded here. */
#define STR(x) #x
#define XSTR(x) STR(x)
#define BLOB(name)                          \
	.section .rodata;                   \
	.balign 16;                         \
	.globl hm_blob_##name##_start;      \
	.globl hm_blob_##name##_end;        \
hm_blob_##name##_start:                     \
	.incbin XSTR(guest/name.bin);      \
hm_blob_##name##_end:

BLOB(idle)
BLOB(dirtier)
BLOB(fault)
	.section .note.GNU-stack, "", @progbits

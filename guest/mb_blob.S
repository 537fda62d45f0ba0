/* The multiboot stub (guest/mb_stub.S), built into $(O)/guest/mb_stub.bin, for tools/mbimage.c. */
	.section .rodata
	.balign 16
	.globl hm_blob_mb_stub_start
	.globl hm_blob_mb_stub_end
hm_blob_mb_stub_start:
	.incbin "guest/mb_stub.bin"
hm_blob_mb_stub_end:
	.section .note.GNU-stack, "", @progbits

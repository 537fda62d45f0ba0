// SPDX-License-Identifier: MIT
/*
 * mbimage: the multiboot image of the dirtier test guest, for QEMU's -kernel
 * (make compare; the layout is in guest/mb.h, the stub in guest/mb_stub.S).
 *
 *   mbimage --guest SPEC --mem SIZE -o FILE [--tsc-khz N]
 *
 * What hybridmig's VMM writes into guest memory before the first KVM_RUN is
 * built here by the VMM's own code, into scratch RAM of the same size: the
 * boot info (src/guest.c: the spec, the layout, the machine's fields with 1
 * vCPU and this host's TSC frequency, found as the VMM finds it; QEMU with
 * KVM gives its guest the host's TSC rate), the GDT, TSS and page tables
 * (src/x86.c). Its low pages become the template the stub copies to 0.
 *
 * QEMU has no device window, so the window's page is mapped onto a RAM
 * "mailbox" page instead: the guest's register stores land in RAM (its
 * progress at mailbox + HM_REG_PROGRESS, readable over QMP with
 * human-monitor-command "xp /1gx ADDR"), its POLL loads read 0 (= run), its
 * block requests return at once, and nothing exits. Prints one JSON object:
 * the file and the addresses a driver reads (mailbox, working set).
 *
 * Built by `make compare` and `make tests` (GNUmakefile) against the
 * project's objects.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "guest/abi.h"
#include "guest/mb.h"
#include "src/guest.h"
#include "src/json.h"
#include "src/mem.h"
#include "src/parse.h"
#include "src/vm.h"

#define PTE_P	 0x1ULL
#define PTE_RW	 0x2ULL
#define PTE_US	 0x4ULL
#define PTE_PS	 0x80ULL
#define PTE_ADDR 0x000ffffffffff000ULL
/* QEMU's pc machine keeps RAM below 3.5 GiB in one piece: the guest's identity map is all RAM */
#define MB_MAX_MEM (3ULL << 30)

extern const uint8_t hm_blob_mb_stub_start[];
extern const uint8_t hm_blob_mb_stub_end[];

static_assert(sizeof(struct hm_mb_desc) == 48, "the stub reserves 48 bytes for the descriptor");

struct opts {
	const char *guest;
	const char *out;
	uint64_t mem;
	uint64_t tsc_khz; /* 0: this host's */
};

/* The image being built: scratch guest RAM and where things are in it. */
struct image {
	struct vm *vm; /* only its RAM is used: the VMM's table builder takes a struct vm */
	struct guest_spec spec;
	struct hm_bootinfo bi;
	uint64_t mailbox; /* guest-physical */
	uint64_t tmpl_len;
	const uint8_t *guest;
	size_t guest_len;
};

static int usage(void)
{
	fprintf(stderr, "usage: mbimage --guest SPEC --mem SIZE -o FILE [--tsc-khz N]\n"
			"  writes the multiboot image of the dirtier guest (SPEC as for\n"
			"  'hybridmig run --guest', no io=) for QEMU -kernel with -m SIZE\n");
	return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "guest", required_argument, NULL, 'g' },
		{ "mem", required_argument, NULL, 'm' },
		{ "output", required_argument, NULL, 'o' },
		{ "tsc-khz", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		switch (c) {
		case 'g':
			o->guest = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o->mem))
				return -EINVAL;
			break;
		case 't':
			if (parse_count_range(optarg, 1, 100000000, &o->tsc_khz))
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	return o->guest && o->out && o->mem && optind == argc ? 0 : -EINVAL;
}

/* The spec and the layout, as `hybridmig run --guest SPEC --mem SIZE --vcpus 1` has them. */
static int build_boot(struct image *im, const struct opts *o, char *why, size_t len)
{
	int err = guest_spec_parse(o->guest, &im->spec, why, len);

	if (err)
		return err;
	if (strcmp(im->spec.type->name, "dirtier") || im->spec.io_mbps) {
		snprintf(why, len,
			 "only the dirtier, without io= (QEMU has no such device), is built");
		return -EINVAL;
	}
	if (o->mem % (1 << 20) || o->mem > MB_MAX_MEM) {
		snprintf(why, len, "--mem must be whole MiB, at most %llu MiB",
			 (unsigned long long)(MB_MAX_MEM >> 20));
		return -EINVAL;
	}
	err = guest_layout(&im->spec, o->mem, 1, &im->bi, why, len);
	if (err)
		return err;
	guest_boot_finish(&im->bi, o->tsc_khz ? o->tsc_khz : vm_arch_host_tsc_khz(NULL), 1, o->mem);
	im->guest = im->spec.type->image;
	im->guest_len = (size_t)(im->spec.type->image_end - im->spec.type->image);
	return 0;
}

/* One past the last page of [HM_PGTABLE_GPA, HM_PGTABLE_END) the table builder wrote. */
static uint64_t tables_end(const struct guest_mem *gm)
{
	uint64_t end = HM_PGTABLE_GPA;

	for (uint64_t gpa = HM_PGTABLE_GPA; gpa < HM_PGTABLE_END; gpa += HM_PAGE_SIZE) {
		const uint64_t *w = mem_gpa_to_hva(gm, gpa, HM_PAGE_SIZE);

		for (size_t i = 0; w && i < HM_PAGE_SIZE / 8; i++)
			if (w[i]) {
				end = gpa + HM_PAGE_SIZE;
				break;
			}
	}
	return end;
}

/* The table entry at @index of the table that @entry points to, or NULL. */
static uint64_t *next_level(const struct guest_mem *gm, uint64_t entry, uint64_t index)
{
	uint64_t *t = mem_gpa_to_hva(gm, entry & PTE_ADDR, HM_PAGE_SIZE);

	return (entry & PTE_P) && !(entry & PTE_PS) && t ? &t[index & 511] : NULL;
}

/*
 * Map the device window's first page onto a RAM mailbox instead of the 2 MiB
 * of nothing the VMM maps (every access there exits to it): a page table
 * after the VMM's tables, the mailbox after it. Returns 0 or -E2BIG.
 */
static int map_mailbox(struct image *im)
{
	struct guest_mem *gm = &im->vm->mem;
	uint64_t pt = tables_end(gm);
	uint64_t *pml4 = mem_gpa_to_hva(gm, HM_PGTABLE_GPA, HM_PAGE_SIZE);
	uint64_t *pdpte = pml4 ? next_level(gm, pml4[0], HM_DEVWIN_GPA >> 30) : NULL;
	uint64_t *pde = pdpte ? next_level(gm, *pdpte, HM_DEVWIN_GPA >> 21) : NULL;
	uint64_t *pte = mem_gpa_to_hva(gm, pt, HM_PAGE_SIZE);

	if (!pde || !(*pde & PTE_PS) || !pte || pt + 2 * HM_PAGE_SIZE > HM_MB_TMPL_MAX)
		return -E2BIG;
	im->mailbox = pt + HM_PAGE_SIZE;
	pte[(HM_DEVWIN_GPA >> HM_PAGE_SHIFT) & 511] = im->mailbox | PTE_P | PTE_RW | PTE_US;
	*pde = pt | PTE_P | PTE_RW | PTE_US;
	im->tmpl_len = im->mailbox + HM_PAGE_SIZE;
	return 0;
}

/* Guest-physical [0, tmpl_len) as the VMM leaves it, with the mailbox mapped. */
static int build_template(struct image *im, uint64_t mem, char *why, size_t len)
{
	struct hm_bootinfo *bi;
	int err;

	im->vm = calloc(1, sizeof(*im->vm));
	if (!im->vm)
		return -ENOMEM;
	im->vm->kvm_fd = -1;
	im->vm->vm_fd = -1;
	err = mem_init(&im->vm->mem, mem);
	if (!err)
		err = vm_arch_setup_memory(im->vm);
	if (!err)
		err = map_mailbox(im);
	bi = mem_gpa_to_hva(&im->vm->mem, HM_BOOTINFO_GPA, sizeof(*bi));
	if (!err && bi)
		*bi = im->bi;
	if (err)
		snprintf(why, len, "cannot build the guest's tables in %llu MiB: %s",
			 (unsigned long long)(mem >> 20), strerror(-err));
	return err;
}

static void fill_desc(const struct image *im, struct hm_mb_desc *d)
{
	d->tmpl_src = HM_MB_LOAD_GPA + HM_MB_STUB_MAX;
	d->tmpl_words = (uint32_t)(im->tmpl_len / 4);
	d->image_src = d->tmpl_src + (uint32_t)im->tmpl_len;
	d->image_words = (uint32_t)((im->guest_len + 3) / 4);
	d->image_dst = HM_IMAGE_GPA;
	d->cr3 = HM_PGTABLE_GPA;
	d->entry = HM_IMAGE_GPA;
	d->stack = HM_STACK_GPA + HM_STACK_SIZE;
	d->boot = HM_BOOTINFO_GPA;
	d->gdt_limit = HM_PAGE_SIZE - 1; /* the GDT page: src/x86.c's entries, then zeros */
	d->gdt_base = HM_GDT_GPA;
}

/* The stub with its descriptor filled, padded to HM_MB_STUB_MAX; 0 or -EINVAL. */
static int build_stub(const struct image *im, uint8_t *stub, char *why, size_t len)
{
	size_t n = (size_t)(hm_blob_mb_stub_end - hm_blob_mb_stub_start);
	struct hm_mb_desc d;
	uint32_t load;

	memset(stub, 0, HM_MB_STUB_MAX);
	/*
	 * The loaded file, and the multiboot info QEMU puts right after it, must
	 * end below the data area: the generation table there starts zeroed.
	 */
	if (HM_MB_LOAD_GPA + HM_MB_STUB_MAX + im->tmpl_len + ((im->guest_len + 3) & ~(size_t)3) +
		HM_PAGE_SIZE >
	    HM_DATA_GPA) {
		snprintf(why, len, "the image (%zu + %zu bytes) does not fit below the data area",
			 im->tmpl_len, im->guest_len);
		return -EINVAL;
	}
	if (n < HM_MB_DESC_OFF + sizeof(d) || n > HM_MB_STUB_MAX) {
		snprintf(why, len, "the stub is %zu bytes", n);
		return -EINVAL;
	}
	memcpy(stub, hm_blob_mb_stub_start, n);
	memcpy(&d, stub + HM_MB_DESC_OFF, sizeof(d));
	memcpy(&load, stub + 16, sizeof(load));
	if (d.magic != HM_MB_DESC_MAGIC || load != HM_MB_LOAD_GPA) {
		snprintf(why, len, "the stub is not linked at 0x%x or has no descriptor",
			 HM_MB_LOAD_GPA);
		return -EINVAL;
	}
	fill_desc(im, &d);
	memcpy(stub + HM_MB_DESC_OFF, &d, sizeof(d));
	return 0;
}

static int write_image(const struct image *im, const char *path, char *why, size_t len)
{
	static uint8_t stub[HM_MB_STUB_MAX];
	const uint8_t pad[4] = { 0 };
	FILE *f;
	int err = build_stub(im, stub, why, len);

	if (err)
		return err;
	f = fopen(path, "wb");
	if (!f) {
		err = -errno;
		snprintf(why, len, "cannot create %s: %s", path, strerror(errno));
		return err;
	}
	fwrite(stub, 1, sizeof(stub), f);
	fwrite(mem_gpa_to_hva(&im->vm->mem, 0, im->tmpl_len), 1, im->tmpl_len, f);
	fwrite(im->guest, 1, im->guest_len, f);
	fwrite(pad, 1, (4 - im->guest_len % 4) % 4, f);
	if (ferror(f) | fclose(f)) {
		err = -EIO;
		snprintf(why, len, "cannot write %s", path);
	}
	return err;
}

static void print_info(const struct image *im, const char *path)
{
	char buf[1024];
	struct json_out j;
	const char *s;

	json_init(&j, buf, sizeof(buf));
	json_obj_begin(&j, NULL);
	json_str(&j, "image", path);
	json_str(&j, "guest", im->spec.text);
	json_u64(&j, "mem", im->bi.ram_bytes);
	json_u64(&j, "bytes", HM_MB_STUB_MAX + im->tmpl_len + ALIGN_UP(im->guest_len, 4));
	json_u64(&j, "stub_bytes", (uint64_t)(hm_blob_mb_stub_end - hm_blob_mb_stub_start));
	json_u64(&j, "load_gpa", HM_MB_LOAD_GPA);
	json_u64(&j, "tsc_khz", im->bi.tsc_khz);
	json_u64(&j, "mailbox_gpa", im->mailbox);
	json_u64(&j, "progress_gpa", im->mailbox + HM_REG_PROGRESS);
	json_u64(&j, "ws_gpa", im->bi.ws_gpa);
	json_u64(&j, "ws_pages", im->bi.ws_pages);
	json_u64(&j, "gen_gpa", im->bi.gen_gpa);
	json_u64(&j, "rate", im->bi.rate);
	json_obj_end(&j);
	s = json_done(&j);
	printf("%s\n", s ? s : "{}");
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct image im = { 0 };
	char why[256] = "";
	int err;

	if (parse_opts(argc, argv, &o))
		return usage();
	err = build_boot(&im, &o, why, sizeof(why));
	if (!err)
		err = build_template(&im, o.mem, why, sizeof(why));
	if (!err)
		err = write_image(&im, o.out, why, sizeof(why));
	if (!err)
		print_info(&im, o.out);
	else
		fprintf(stderr, "mbimage: %s\n", why);
	if (im.vm)
		mem_exit(&im.vm->mem);
	free(im.vm);
	return err ? 1 : 0;
}

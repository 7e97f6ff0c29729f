/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctr.c - AES-128-CTR for libssh2, with its keystream made in bulk.
 *
 * libssh2 1.10 encrypts and decrypts SSH packets 16 bytes per EVP_Cipher()
 * call.  OpenSSL's cost per call, not AES itself, then dominates an SFTP
 * transfer's CPU (docs/performance.md, "Where the SFTP CPU goes").  In counter
 * mode the keystream does not depend on the data, so this cipher asks OpenSSL
 * for 64 KiB of it at a time (its pipelined AES-NI path) and XORs it in
 * per call: byte for byte the same AES-128-CTR, computed ahead.
 *
 * libssh2 finds ciphers through OpenSSL's EVP_aes_128_ctr().  This file
 * defines that symbol; an executable that links it and libssh2.so gets it
 * exported (the linker exports definitions a linked shared library
 * refers to), and the dynamic linker binds libssh2's reference to it.
 * libssh2 is the only user of OpenSSL in vfsd.  The real cipher is
 * fetched by name from OpenSSL's provider, never through the symbol.
 *
 * Ours is handed out only once sftp_ctr_engage() has checked that it is
 * safe: libssh2 is built on OpenSSL, resolves the same libcrypto as vfsd
 * (an EVP_CIPHER made by one libcrypto means nothing to another), and
 * would find our symbol.  Until then, and for good if a check fails,
 * every caller gets OpenSSL's own.  session.c calls sftp_ctr_engage()
 * before each handshake, which also keeps this object linked into the
 * daemon.  With -Dbulk_ctr=false none of this is built (the end of the
 * file).
 *
 * Failures fail closed.  libssh2 1.10 built on OpenSSL 3 takes any
 * EVP_Cipher() result but -1 as success and then sends what the output
 * buffer holds, so the cipher is a "custom" one (EVP_CIPH_FLAG_CUSTOM_CIPHER:
 * bytes written or -1, which OpenSSL's own EVP_*Update() read the same
 * way), zeroes its output on failure, and stays failed until a new IV.
 * The init callback answers 0 on failure, which EVP_CipherInit() (and so
 * libssh2's key exchange) takes as failure.
 *
 * The key schedule and keystream live in the cipher context, which
 * libssh2 frees with EVP_CIPHER_CTX_free(); the cleanup clears them.
 */
#define OPENSSL_SUPPRESS_DEPRECATED  /* EVP_CIPHER_meth_*: the legacy          \
				      * way to define a cipher in-process */
#include <dlfcn.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libssh2.h>

#include "backends/sftp/internal.h"

#if VFSD_BULK_CTR

#define CTR_KEY_LEN 16
#define CTR_IV_LEN  16
#define CTR_CHUNK   (64 * 1024) /* keystream made per OpenSSL call */

struct ctr_state {
	EVP_CIPHER_CTX *bulk; /* OpenSSL's AES-128-CTR */
	size_t pos, len;      /* unused keystream: ks[pos..len) */
	unsigned char key[CTR_KEY_LEN];
	bool have_key;
	bool ready; /* bulk keyed with key and an IV, no failure since */
	unsigned char ks[CTR_CHUNK];
};

unsigned int sftp_ctr_test_faults;

static const unsigned char ctr_zeros[CTR_CHUNK];
static EVP_CIPHER *ctr_real; /* fetched once, never freed */
static EVP_CIPHER *ctr_meth; /* ours, made once */
static pthread_once_t ctr_once = PTHREAD_ONCE_INIT;

/* Set once by sftp_ctr_engage(), before ctr_checked. */
static void *ctr_libssh2_base; /* where libssh2 is loaded */
/* EVP_aes_128_ctr as libssh2's own libraries resolve it, or NULL */
static const EVP_CIPHER *(*ctr_theirs)(void);
static atomic_bool ctr_checked, ctr_engaged;

/* Whether the unit tests asked for this failure (once). */
static bool ctr_fault(unsigned int which)
{
	return (__atomic_load_n(&sftp_ctr_test_faults, __ATOMIC_RELAXED) &
		which) &&
	       (__atomic_fetch_and(&sftp_ctr_test_faults, ~which,
				   __ATOMIC_SEQ_CST) &
		which);
}

static int ctr_init(EVP_CIPHER_CTX *ctx, const unsigned char *key,
		    const unsigned char *iv, int enc)
{
	struct ctr_state *st = EVP_CIPHER_CTX_get_cipher_data(ctx);
	static atomic_bool told;

	(void)enc; /* counter mode: the same both ways */
	if (key) {
		memcpy(st->key, key, CTR_KEY_LEN);
		st->have_key = true;
		st->ready = false; /* a new key wants a new IV */
	}
	/*
	 * Only an IV restarts the keystream: a re-init without one must
	 * never run the same counter again (keystream reuse), so it either
	 * changes nothing or, with a new key, waits for the IV.
	 */
	if (!iv)
		return 1;
	st->ready = false;
	st->pos = st->len = 0;
	if (!st->have_key)
		return 0;
	if (!st->bulk) {
		st->bulk = ctr_fault(SFTP_CTR_FAIL_ALLOC)
				   ? NULL
				   : EVP_CIPHER_CTX_new();
		if (!st->bulk)
			return 0;
	}
	if (ctr_fault(SFTP_CTR_FAIL_KEY) ||
	    EVP_EncryptInit_ex(st->bulk, ctr_real, NULL, st->key, iv) != 1)
		return 0;
	st->ready = true;
	if (!atomic_exchange(&told, true))
		log_info("sftp: AES-128-CTR with its keystream made in bulk "
			 "serves libssh2");
	return 1;
}

static bool ctr_refill(struct ctr_state *st)
{
	int n = 0;

	if (ctr_fault(SFTP_CTR_FAIL_REFILL) ||
	    EVP_EncryptUpdate(st->bulk, st->ks, &n, ctr_zeros, CTR_CHUNK) !=
		    1 ||
	    n != CTR_CHUNK)
		return false;
	st->pos = 0;
	st->len = CTR_CHUNK;
	return true;
}

/* len bytes written, or -1 with `out` zeroed (see the top of the file). */
static int ctr_do_cipher(EVP_CIPHER_CTX *ctx, unsigned char *out,
			 const unsigned char *in, size_t len)
{
	struct ctr_state *st = EVP_CIPHER_CTX_get_cipher_data(ctx);
	unsigned char *out0 = out;
	size_t left = len;

	if (!st || !st->ready || len > INT_MAX)
		goto fail;
	while (left > 0) {
		size_t n, i;

		if (st->pos == st->len && !ctr_refill(st))
			goto fail;
		n = st->len - st->pos;
		if (n > left)
			n = left;
		/* word at a time: libssh2 calls with 16 bytes */
		for (i = 0; i + 8 <= n; i += 8) {
			uint64_t a, k;

			memcpy(&a, in + i, 8);
			memcpy(&k, st->ks + st->pos + i, 8);
			a ^= k;
			memcpy(out + i, &a, 8);
		}
		for (; i < n; i++)
			out[i] = in[i] ^ st->ks[st->pos + i];
		st->pos += n;
		in += n;
		out += n;
		left -= n;
	}
	return (int)len;

fail:
	/*
	 * The caller's count of bytes and ours now differ: nothing more
	 * from this keystream until a new IV.  A caller that ignored the
	 * result would send zeros, not plaintext (in place, `in` is `out`).
	 */
	if (st)
		st->ready = false;
	if (out0 && len)
		memset(out0, 0, len);
	return -1;
}

static int ctr_cleanup(EVP_CIPHER_CTX *ctx)
{
	struct ctr_state *st = EVP_CIPHER_CTX_get_cipher_data(ctx);

	if (st) {
		EVP_CIPHER_CTX_free(st->bulk);
		OPENSSL_cleanse(st, sizeof(*st));
	}
	return 1;
}

/* A copy would share the bulk context (and its keystream): refused,
 * libssh2 never copies a cipher context. */
static int ctr_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr)
{
	(void)ctx;
	(void)arg;
	(void)ptr;
	return type == EVP_CTRL_INIT ? 1 : 0;
}

static void ctr_make(void)
{
	EVP_CIPHER *m;

	ctr_real = EVP_CIPHER_fetch(NULL, "AES-128-CTR", NULL);
	if (!ctr_real)
		return;
	m = EVP_CIPHER_meth_new(NID_aes_128_ctr, 1, CTR_KEY_LEN);
	if (!m)
		return;
	if (!EVP_CIPHER_meth_set_iv_length(m, CTR_IV_LEN) ||
	    !EVP_CIPHER_meth_set_flags(
		    m, EVP_CIPH_CTR_MODE | EVP_CIPH_ALWAYS_CALL_INIT |
			       EVP_CIPH_CUSTOM_IV | EVP_CIPH_CUSTOM_COPY |
			       EVP_CIPH_FLAG_CUSTOM_CIPHER) ||
	    !EVP_CIPHER_meth_set_ctrl(m, ctr_ctrl) ||
	    !EVP_CIPHER_meth_set_init(m, ctr_init) ||
	    !EVP_CIPHER_meth_set_do_cipher(m, ctr_do_cipher) ||
	    !EVP_CIPHER_meth_set_cleanup(m, ctr_cleanup) ||
	    !EVP_CIPHER_meth_set_impl_ctx_size(m, sizeof(struct ctr_state))) {
		EVP_CIPHER_meth_free(m);
		return;
	}
	ctr_meth = m;
}

const EVP_CIPHER *sftp_ctr_cipher(void)
{
	pthread_once(&ctr_once, ctr_make);
	return ctr_meth;
}

/* The file a symbol's address lies in, for messages. */
static const char *ctr_file_of(const void *addr)
{
	Dl_info info;

	if (addr && dladdr(addr, &info) && info.dli_fname)
		return info.dli_fname;
	return "?";
}

bool sftp_ctr_check(const void *theirs, const void *vfsds, const void *seen,
		    char *why, size_t size)
{
	if (!theirs) {
		snprintf(why, size,
			 "libssh2 is not built on OpenSSL (no "
			 "EVP_aes_128_ctr among its libraries)");
		return false;
	}
	if (!vfsds) {
		snprintf(why, size, "vfsd's own libcrypto was not found");
		return false;
	}
	if (theirs != vfsds) {
		snprintf(why, size, "libssh2 uses libcrypto %s, vfsd %s",
			 ctr_file_of(theirs), ctr_file_of(vfsds));
		return false;
	}
	if (seen != (const void *)EVP_aes_128_ctr) {
		snprintf(why, size,
			 "libssh2 would not call vfsd's EVP_aes_128_ctr "
			 "(it resolves to %s)",
			 ctr_file_of(seen));
		return false;
	}
	return true;
}

/*
 * The run-time checks (see the top of the file).  dlsym() through
 * libssh2's handle searches libssh2 and its dependencies, not the daemon,
 * so it finds the libcrypto libssh2 was linked with; RTLD_NEXT from here
 * finds the one vfsd's own OpenSSL calls go to.
 */
static bool ctr_check_process(char *why, size_t size)
{
	void *init = dlsym(RTLD_DEFAULT, "libssh2_session_init_ex");
	void *theirs = NULL, *vfsds, *meth_new, *handle;
	Dl_info l2, a, b;

	if (!init || !dladdr(init, &l2) || !l2.dli_fname || !l2.dli_fbase) {
		snprintf(why, size, "libssh2 was not found in the process");
		return false;
	}
	ctr_libssh2_base = l2.dli_fbase;
	handle = dlopen(l2.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
	if (handle) {
		theirs = dlsym(handle, "EVP_aes_128_ctr");
		dlclose(handle);
	}
	*(void **)&ctr_theirs = theirs;
	vfsds = dlsym(RTLD_NEXT, "EVP_aes_128_ctr");
	/* the cipher is made with EVP_CIPHER_meth_new(): from there too */
	meth_new = dlsym(RTLD_DEFAULT, "EVP_CIPHER_meth_new");
	if (vfsds && (!meth_new || !dladdr(vfsds, &a) ||
		      !dladdr(meth_new, &b) || a.dli_fbase != b.dli_fbase)) {
		snprintf(why, size,
			 "vfsd's OpenSSL calls do not all go to one libcrypto");
		return false;
	}
	return sftp_ctr_check(theirs, vfsds,
			      dlsym(RTLD_DEFAULT, "EVP_aes_128_ctr"), why,
			      size);
}

static void ctr_engage(void)
{
	char why[512];
	bool ok = ctr_check_process(why, sizeof(why));

	if (ok && !sftp_ctr_cipher()) {
		snprintf(why, sizeof(why), "OpenSSL could not make the cipher");
		ok = false;
	}
	atomic_store(&ctr_engaged, ok);
	atomic_store(&ctr_checked, true);
	if (ok)
		log_info("sftp: aes128-ctr: bulk keystream engaged (libssh2 "
			 "and vfsd share %s)",
			 ctr_file_of((const void *)ctr_theirs));
	else
		log_warn("sftp: aes128-ctr: bulk keystream not engaged: %s; "
			 "OpenSSL's per-block cipher serves",
			 why);
}

bool sftp_ctr_engage(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, ctr_engage);
	return atomic_load(&ctr_engaged);
}

/* OpenSSL's own EVP_aes_128_ctr(), which ours hides. */
static const EVP_CIPHER *ctr_openssl(void)
{
	static const EVP_CIPHER *(*next)(void);

	if (!__atomic_load_n(&next, __ATOMIC_ACQUIRE)) {
		const EVP_CIPHER *(*f)(void);

		*(void **)&f = dlsym(RTLD_NEXT, "EVP_aes_128_ctr");
		if (!f)
			return NULL;
		__atomic_store_n(&next, f, __ATOMIC_RELEASE);
	}
	return next();
}

/* Whether the code at `ra` is libssh2's (once checked). */
static bool ctr_from_libssh2(void *ra)
{
	Dl_info caller;

	return dladdr(ra, &caller) && caller.dli_fbase == ctr_libssh2_base;
}

/*
 * The interposer (see the top of the file).  Only libssh2 gets ours, and
 * only once engaged: OpenSSL calls the symbol itself while it initialises
 * (which making ours sets off), and anyone else is better served by the
 * original.  Not engaged, libssh2 gets what its own libraries resolve,
 * as if the daemon did not define the symbol.
 */
const EVP_CIPHER *EVP_aes_128_ctr(void)
{
	if (atomic_load(&ctr_checked) &&
	    ctr_from_libssh2(__builtin_return_address(0))) {
		if (atomic_load(&ctr_engaged))
			return ctr_meth;
		if (ctr_theirs)
			return ctr_theirs();
	}
	return ctr_openssl();
}

#else /* !VFSD_BULK_CTR */

bool sftp_ctr_engage(void)
{
	static atomic_bool told;

	if (!atomic_exchange(&told, true))
		log_info("sftp: aes128-ctr: bulk keystream not engaged: "
			 "left out of this build (-Dbulk_ctr=false)");
	return false;
}

#endif /* VFSD_BULK_CTR */

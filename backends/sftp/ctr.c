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
 * session.c calls sftp_ctr_cipher() so the object is always linked.
 *
 * The key schedule and keystream live in the cipher context, which
 * libssh2 frees with EVP_CIPHER_CTX_free(); the cleanup clears them.
 */
#define OPENSSL_SUPPRESS_DEPRECATED  /* EVP_CIPHER_meth_*: the legacy          \
				      * way to define a cipher in-process */
#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <libssh2.h>

#include "backends/sftp/internal.h"

#define CTR_KEY_LEN 16
#define CTR_IV_LEN  16
#define CTR_CHUNK   (64 * 1024) /* keystream made per OpenSSL call */

struct ctr_state {
	EVP_CIPHER_CTX *bulk; /* OpenSSL's AES-128-CTR */
	size_t pos, len;      /* unused keystream: ks[pos..len) */
	unsigned char key[CTR_KEY_LEN];
	bool have_key;
	bool ready; /* bulk keyed with key and an IV */
	unsigned char ks[CTR_CHUNK];
};

static const unsigned char ctr_zeros[CTR_CHUNK];
static EVP_CIPHER *ctr_real; /* fetched once, never freed */
static EVP_CIPHER *ctr_meth; /* ours, made once */
static pthread_once_t ctr_once = PTHREAD_ONCE_INIT;

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
	if (!st->have_key)
		return 0;
	if (!st->bulk && !(st->bulk = EVP_CIPHER_CTX_new()))
		return 0;
	st->pos = st->len = 0;
	st->ready = EVP_EncryptInit_ex(st->bulk, ctr_real, NULL, st->key, iv);
	if (st->ready && !atomic_exchange(&told, true))
		log_info("sftp: AES-128-CTR with its keystream made in bulk "
			 "serves libssh2");
	return st->ready;
}

static int ctr_refill(struct ctr_state *st)
{
	int n = 0;

	if (!st->bulk ||
	    !EVP_EncryptUpdate(st->bulk, st->ks, &n, ctr_zeros, CTR_CHUNK) ||
	    n != CTR_CHUNK)
		return 0;
	st->pos = 0;
	st->len = CTR_CHUNK;
	return 1;
}

static int ctr_do_cipher(EVP_CIPHER_CTX *ctx, unsigned char *out,
			 const unsigned char *in, size_t len)
{
	struct ctr_state *st = EVP_CIPHER_CTX_get_cipher_data(ctx);

	if (!st->ready)
		return 0;
	while (len > 0) {
		size_t n, i;

		if (st->pos == st->len && !ctr_refill(st))
			return 0;
		n = st->len - st->pos;
		if (n > len)
			n = len;
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
		len -= n;
	}
	return 1;
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
			       EVP_CIPH_CUSTOM_IV | EVP_CIPH_CUSTOM_COPY) ||
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

/* Whether the code at `ra` is libssh2's. */
static bool ctr_from_libssh2(void *ra)
{
	static void *base;
	Dl_info self, caller;

	if (!__atomic_load_n(&base, __ATOMIC_ACQUIRE)) {
		if (!dladdr((void *)libssh2_session_init_ex, &self) ||
		    !self.dli_fbase)
			return false;
		__atomic_store_n(&base, self.dli_fbase, __ATOMIC_RELEASE);
	}
	return dladdr(ra, &caller) && caller.dli_fbase == base;
}

/*
 * The interposer (see the top of the file).  Only libssh2 gets ours:
 * OpenSSL calls the symbol itself while it initialises (which making ours
 * sets off), and anyone else is better served by the original.  Should
 * making ours fail (out of memory at first use), OpenSSL's answers.
 */
const EVP_CIPHER *EVP_aes_128_ctr(void)
{
	if (ctr_from_libssh2(__builtin_return_address(0))) {
		const EVP_CIPHER *c = sftp_ctr_cipher();

		if (c)
			return c;
	}
	return ctr_openssl();
}

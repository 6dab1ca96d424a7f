//go:build openssl

#include "shim.h"

#include <errno.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

typedef int (*sec_cb_fn)(const SSL *, const SSL_CTX *, int, int, int, void *, void *);

static sec_cb_fn default_sec_cb;

// sec_cb records the size of the server's DHE group and refuses one below
// the connection's minimum (Logjam); every other question goes to
// OpenSSL's default callback (the system's security level).
static int sec_cb(const SSL *s, const SSL_CTX *ctx, int op, int bits, int nid, void *other, void *ex) {
	if (op == SSL_SECOP_TMP_DH && s != NULL && other != NULL) {
		cam_state *st = SSL_get_app_data(s);
		int b = EVP_PKEY_get_bits((EVP_PKEY *)other);
		if (st != NULL) {
			st->dh_bits = b;
			if (b < st->min_dh_bits) {
				return 0;
			}
		}
	}
	return default_sec_cb(s, ctx, op, bits, nid, other, ex);
}

static void fill(SSL *s, int r, cam_err *e) {
	e->ssl_err = 0;
	e->sys_errno = errno;
	e->msg[0] = 0;
	e->reason = 0;
	if (r <= 0 && s != NULL) {
		e->ssl_err = SSL_get_error(s, r);
	}
	unsigned long code = ERR_get_error();
	if (code != 0) {
		ERR_error_string_n(code, e->msg, sizeof e->msg);
		e->reason = ERR_GET_REASON(code);
	}
	ERR_clear_error();
}

SSL_CTX *cam_ctx_new(const char *ciphers12, const char *suites13, int max_version, cam_err *e) {
	ERR_clear_error();
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		fill(NULL, 1, e);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, max_version) ||
	    !SSL_CTX_set_cipher_list(ctx, ciphers12) ||
	    !SSL_CTX_set_ciphersuites(ctx, suites13)) {
		fill(NULL, 1, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	// Certificates are judged by the Go policy (tlspolicy), on the DER
	// chain, before any FTP byte is sent.
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	if (default_sec_cb == NULL) {
		default_sec_cb = (sec_cb_fn)SSL_CTX_get_security_callback(ctx);
	}
	SSL_CTX_set_security_callback(ctx, sec_cb);
	fill(NULL, 1, e);
	return ctx;
}

SSL *cam_ssl_new(SSL_CTX *ctx, int fd, const char *sni, SSL_SESSION *sess, cam_state *st, cam_err *e) {
	ERR_clear_error();
	SSL *s = SSL_new(ctx);
	if (s == NULL) {
		fill(NULL, 1, e);
		return NULL;
	}
	if (!SSL_set_fd(s, fd) || !SSL_set_app_data(s, st) ||
	    (sni != NULL && !SSL_set_tlsext_host_name(s, sni))) {
		fill(NULL, 1, e);
		SSL_free(s);
		return NULL;
	}
	if (sess != NULL) {
		// A copy: a connection freed without close_notify (a cut RETR)
		// marks its session not resumable (ssl_clear_bad_session), and
		// the caller's session must stay resumable for the next one.
		SSL_SESSION *d = SSL_SESSION_dup(sess);
		int ok = d != NULL && SSL_set_session(s, d);
		SSL_SESSION_free(d);
		if (!ok) {
			fill(NULL, 1, e);
			SSL_free(s);
			return NULL;
		}
	}
	SSL_set_connect_state(s);
	fill(NULL, 1, e);
	return s;
}

int cam_handshake(SSL *s, cam_err *e) {
	ERR_clear_error();
	errno = 0;
	int r = SSL_do_handshake(s);
	fill(s, r, e);
	return r;
}

int cam_read(SSL *s, void *buf, int n, cam_err *e) {
	ERR_clear_error();
	errno = 0;
	int r = SSL_read(s, buf, n);
	fill(s, r, e);
	return r;
}

int cam_write(SSL *s, const void *buf, int n, cam_err *e) {
	ERR_clear_error();
	errno = 0;
	int r = SSL_write(s, buf, n);
	fill(s, r, e);
	return r;
}

// cam_shutdown sends close_notify: 0 when sent (the peer's is awaited by
// reading), 1 when the peer's had already arrived.
int cam_shutdown(SSL *s, cam_err *e) {
	ERR_clear_error();
	errno = 0;
	int r = SSL_shutdown(s);
	fill(s, r, e);
	return r;
}

int cam_peer_tmp_key(SSL *s, int *is_dh) {
	EVP_PKEY *k = NULL;
	*is_dh = 0;
	if (!SSL_get_peer_tmp_key(s, &k) || k == NULL) {
		ERR_clear_error();
		return 0;
	}
	*is_dh = EVP_PKEY_get_base_id(k) == EVP_PKEY_DH;
	int bits = EVP_PKEY_get_bits(k);
	EVP_PKEY_free(k);
	return bits;
}

int cam_cert_count(SSL *s) {
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(s);
	return sk == NULL ? 0 : sk_X509_num(sk);
}

int cam_cert_der(SSL *s, int i, unsigned char **out) {
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(s);
	*out = NULL;
	if (sk == NULL || i < 0 || i >= sk_X509_num(sk)) {
		return -1;
	}
	int n = i2d_X509(sk_X509_value(sk, i), out);
	ERR_clear_error();
	return n;
}

void cam_free(void *p) { OPENSSL_free(p); }

int cam_ctx_cipher_count(SSL_CTX *ctx) {
	STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
	return sk == NULL ? 0 : sk_SSL_CIPHER_num(sk);
}

unsigned short cam_ctx_cipher_id(SSL_CTX *ctx, int i) {
	return (unsigned short)SSL_CIPHER_get_protocol_id(sk_SSL_CIPHER_value(SSL_CTX_get_ciphers(ctx), i));
}

unsigned short cam_cipher_id(SSL *s) {
	const SSL_CIPHER *c = SSL_get_current_cipher(s);
	return c == NULL ? 0 : (unsigned short)SSL_CIPHER_get_protocol_id(c);
}

// cam_no_common_suite: the handshake ended because the server accepts none
// of the suites (or groups) offered: its handshake_failure or
// insufficient_security alert, or nothing left to offer.
int cam_no_common_suite(int reason) {
	return reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE ||
		reason == SSL_R_TLSV1_ALERT_INSUFFICIENT_SECURITY ||
		reason == SSL_R_NO_CIPHERS_AVAILABLE;
}

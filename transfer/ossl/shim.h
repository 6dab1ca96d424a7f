// The C side of package ossl: each function runs one OpenSSL call and reads
// its error (SSL_get_error, errno, the thread's error queue) in the same C
// call, because a goroutine may move to another thread between cgo calls
// and OpenSSL's error queue is per thread.

#ifndef CAMFTPD_OSSL_SHIM_H
#define CAMFTPD_OSSL_SHIM_H

#include <openssl/ssl.h>

typedef struct {
	int ssl_err;        // SSL_get_error, 0 on success
	int sys_errno;      // errno after the call
	char msg[256];      // the first queued OpenSSL error, "" if none
	int reason;         // its reason code (ERR_GET_REASON), 0 if none
} cam_err;

// Per-connection state reached from the security callback (SSL app data).
typedef struct {
	int min_dh_bits;    // a DHE group below this is refused
	int dh_bits;        // the server's DHE group size, 0 if none seen
} cam_state;

SSL_CTX *cam_ctx_new(const char *ciphers12, const char *suites13, int max_version, cam_err *e);
SSL *cam_ssl_new(SSL_CTX *ctx, int fd, const char *sni, SSL_SESSION *sess, cam_state *st, cam_err *e);
int cam_handshake(SSL *s, cam_err *e);
int cam_read(SSL *s, void *buf, int n, cam_err *e);
int cam_write(SSL *s, const void *buf, int n, cam_err *e);
int cam_shutdown(SSL *s, cam_err *e);
int cam_peer_tmp_key(SSL *s, int *is_dh);
int cam_cert_count(SSL *s);
int cam_cert_der(SSL *s, int i, unsigned char **out);
void cam_free(void *p);
int cam_ctx_cipher_count(SSL_CTX *ctx);
unsigned short cam_ctx_cipher_id(SSL_CTX *ctx, int i);
unsigned short cam_cipher_id(SSL *s);
int cam_no_common_suite(int reason);

#endif

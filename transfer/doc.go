// Package transfer performs one FTPES upload, done right: connect with the
// TLS config of tlspolicy, write to a temporary name, resume, rename, verify,
// and classify every error as transient, permanent, auth, tls-policy or
// certificate.
//
// It is the only package that imports goftp.
package transfer

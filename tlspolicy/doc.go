// Package tlspolicy owns the FTPS cipher policy of the camera's spec: the
// table of the 13 listed suites with their class, the policy modes, building
// the *tls.Config used for every control and data connection, classifying
// what a handshake negotiated, CA import and certificate pinning.
//
// It imports nothing of the project and only the standard library.
package tlspolicy

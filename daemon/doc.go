// Package daemon wires camftpd together: configuration (TOML, validated with
// every error's line), the media watcher (fsnotify hints, settle window,
// rescans), the upload scheduler (workers leasing from the queue, no
// polling), the status socket (HTTP/JSON over a Unix socket), signals and the
// command line (Main).
//
// Only the commands import it (cmd/camftpd, and cmd/camftpd-demo which adds
// the test FTPS server); it is the only package that imports fsnotify.
package daemon

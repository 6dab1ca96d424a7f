// Package daemon wires camftpd together: configuration (TOML, validated with
// every error's line), the media watcher (fsnotify hints, a capture complete
// once no writer holds it, asked of the kernel with a read lease, or after a
// settle window where leases are refused; rescans), the upload scheduler
// (workers leasing from the queue, no polling), the status socket
// (HTTP/JSON over a Unix socket), signals and the command line (Main).
//
// Only the commands import it (cmd/camftpd, and cmd/camftpd-demo which adds
// the test FTPS server); it is the only package that imports fsnotify.
package daemon

// Files, bottom up: a file uses only files of its own layer or below.
//
//  1. version.go, tomllines.go, patterns.go, writers_*.go, events.go,
//     health.go, limiters.go, openfile.go, overtaken.go, trustterm_*.go:
//     helpers and small types.
//  2. config.go, powerconfig.go, tlsopts.go: the configuration (and its
//     capture rules, newMatcher; the link and battery policy; a server's
//     TLS options with the trust store).
//  3. watcher.go, rescan.go, backlog.go, leasemode.go: the media watcher.
//  4. stats.go, linkmeter.go: the figures (and the link's measured speed).
//  5. daemon.go: Daemon and its run state; truth.go: the state and the
//     LED told from it and the queue (idle only when nothing waits).
//  6. schedule.go, attempt.go, ack.go, localfile.go, orphans.go, retry.go,
//     overtake.go: the upload workers; power.go: the gate of their leases
//     (link speed, battery).
//  7. add.go: the daemon's side of queue add; conntest.go: the connection
//     test of a server (camftpd check, POST /check).
//  8. status.go, trust.go: the status socket (trust.go: POST /trusted).
//  9. run.go: Run, its loop and the goroutines it owns.
//  10. cli.go, addcmd.go, checkcmd.go, trustcmd.go, escape.go: the command
//     line (escape.go exports its escaping of names and server text).
//
// Within a layer, files depend on each other only as one type's method
// set split by concern: watcher (3: rescan and backlog are its scans,
// leasemode its completion check), worker (6: schedule.go holds the type,
// its loop and the dispatcher, the others one step each of an upload) and
// queueCmd (10: addcmd.go is its add; checkcmd.go is check's printing,
// no type).

// Command benchkit is camftpd's benchmark harness (scripts/bench, make bench).
//
// In one run it starts one real vsftpd (TLS, default settings, including
// require_ssl_reuse=YES) on loopback and measures camftpd (the real daemon
// binary watching a folder) against the tools people use for the same job:
// curl (one process per file, as a shell watcher would), lftp (mirror -R once,
// and put once per file) and goftp used naively (./naive). Workloads: one
// large video file, a burst of JPEG-sized files, many small files, a burst
// through a user-space link emulator (20 ms RTT, 100 Mbit/s), and the time
// to the desk of single shots at 1 shot/s (file closed -> upload start on
// the server, and -> complete there; latency.go).
//
// Arrival is observed on the server's side (inotify on the served folder), so
// every tool is timed the same way: from the moment the files are dropped to
// the moment the last one is complete on the server. Client CPU and peak RSS
// come from the kernel: wait4 rusage of the client process tree for the peers,
// /proc/PID/stat and VmHWM for the daemon.
//
// See BENCHMARKS.md for the definitions, the results and the exact command.
package main

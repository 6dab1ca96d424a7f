// Package board describes the camera the daemon runs on: board profiles with
// media and state paths, capture file patterns, the network link and storage
// mount to follow (as kernel events, never a polling loop), a status
// indicator hook, and the init scripts that start the daemon.
//
// Of the project it imports only internal/wallclock (the clock threshold it
// shares with tlspolicy); of third-party code only golang.org/x/sys.
package board

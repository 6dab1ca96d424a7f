package daemon

// Version is stamped by the linker (-ldflags -X).
var Version = "dev"

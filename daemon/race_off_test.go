//go:build !race

package daemon

// raceOn: the race detector multiplies memory; RSS bounds are not judged.
const raceOn = false

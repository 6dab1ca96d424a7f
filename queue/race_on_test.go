//go:build race

package queue

// raceEnabled scales down CPU-heavy fills under the race detector.
const raceEnabled = true

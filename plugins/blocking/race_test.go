//go:build race

package blocking

// raceEnabled: the race detector's instrumentation allocates by itself.
const raceEnabled = true

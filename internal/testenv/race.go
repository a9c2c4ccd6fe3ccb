//go:build race

package testenv

// raceEnabled makes Binary build with the race detector when the tests run
// with it.
const raceEnabled = true

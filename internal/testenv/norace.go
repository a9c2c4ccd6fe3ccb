//go:build !race

package testenv

// RaceEnabled reports whether the tests run with the race detector; Binary
// then builds with it too.
const RaceEnabled = false

// Package statefile serves the decision point's facts from a YAML state file
// (../shared/spec/STATE.md): strict parsing with positions, validation
// warnings, and reload on change keeping the last good state.
package statefile

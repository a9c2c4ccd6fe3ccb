// Package e2e holds no code: its tests run the repository as a newcomer
// would, the README's walkthroughs typed as written against the built
// binaries, and check the figures the README states against the code.
package e2e

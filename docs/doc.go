// Package docs holds no code: its tests check the README and the documents
// beside it against the repository, running the README's walkthroughs as a
// newcomer would type them and checking the figures it states.
package docs

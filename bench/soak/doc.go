// Package soak is the soak test of pdp (make soak): it builds and starts the
// real pdp binary on a real redis-server, drives /v1/check and /v1/authz
// with bounded concurrency for SOAK_DURATION while Redis is killed and
// restarted and the change stream carries revocations, then checks that no
// decision allowed what the state at that moment did not grant, that no
// answer was a 5xx, and that pdp's memory and goroutines came back near
// their baseline. The test is behind the build tag soak, so the default
// test run neither runs nor skips it:
//
//	make soak SOAK_DURATION=3m
//	SOAK_DURATION=3m go test -tags soak -count=1 -v -run TestSoak ./bench/soak/
package soak

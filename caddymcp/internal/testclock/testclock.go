// Package testclock is a clock for tests: it stands still until the test
// moves it, so that expiry, rotation and cache lifetimes can be checked
// to the second without sleeping.
package testclock

import (
	"sync"
	"time"
)

// Clock is a settable clock. It is safe for concurrent use: servers under
// test read it from their handler goroutines while the test advances it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is advanced.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time; its method value stands in for time.Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

package testclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/caddymcp/caddymcp/caddymcp/internal/testclock"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	c := testclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Advance(time.Second)
			_ = c.Now()
		}()
	}
	wg.Wait()
	if got := c.Now(); !got.Equal(start.Add(10 * time.Second)) {
		t.Errorf("after ten advances of a second: %v", got)
	}
	c.Advance(-time.Minute)
	if got := c.Now(); !got.Equal(start.Add(-50 * time.Second)) {
		t.Errorf("after going back a minute: %v", got)
	}
}

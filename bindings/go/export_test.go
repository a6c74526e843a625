//go:build cgo

package redilock

// RenewalHandles lets the tests check that the library gives back every renewal's handle.
func RenewalHandles() int64 {
	return renewalHandles.Load()
}

// CloseWaitsForCalls reports whether Close is waiting for calls in flight to return, which it
// does only once the library's client is closed: a writer waiting on mu refuses new readers.
func CloseWaitsForCalls(c *Client) bool {
	if !c.mu.TryRLock() {
		return true
	}
	c.mu.RUnlock()
	return false
}

// Millis is the conversion of every duration passed to the library.
var Millis = millis

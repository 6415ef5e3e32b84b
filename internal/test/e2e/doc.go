// Package e2e holds end-to-end tests that drive an in-process registry over
// HTTP with real client libraries (go-containerregistry, oras-go) through
// the token flow.
package e2e

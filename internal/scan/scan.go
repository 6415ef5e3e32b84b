// Package scan defines what a vulnerability scanner is to the registry:
// the Scanner interface, the image it is handed, and the statuses it
// reports, with their order and how an index's status follows from its
// children's.
package scan

import (
	"context"
	"encoding/json"
	"io"
)

// Status is the vulnerability status of a manifest.
type Status string

// Statuses.
const (
	// Pending: not scanned yet.
	Pending Status = "Pending"
	// Clean: no known vulnerability.
	Clean Status = "Clean"
	// Unknown: vulnerabilities of unknown severity only.
	Unknown Status = "Unknown"
	// Low … Critical: the highest severity among the vulnerabilities.
	Low      Status = "Low"
	Medium   Status = "Medium"
	High     Status = "High"
	Critical Status = "Critical"
	// Unsupported: the scanner cannot scan this kind of content (an
	// artifact, an unknown layer format, a layer over the limits).
	Unsupported Status = "Unsupported"
	// Error: the scan failed.
	Error Status = "Error"
	// Rotten: the image's distribution is past its end of life, so that
	// its vulnerabilities are no longer tracked.
	Rotten Status = "Rotten"
)

// rank orders the statuses for Merge: the status of an index is the
// highest of its children's.
var rank = map[Status]int{
	Unsupported: 0, Clean: 1, Unknown: 2, Low: 3, Medium: 4, High: 5, Critical: 6,
	Pending: 7, Error: 8, Rotten: 9,
}

// Valid reports whether s is one of the statuses.
func (s Status) Valid() bool {
	_, ok := rank[s]
	return ok
}

// Merge returns the status of an index from its children's: the highest
// of them (Unsupported for none). A pending child keeps the index
// pending; an error or a rotten child shows.
func Merge(statuses ...Status) Status {
	out := Unsupported
	for _, s := range statuses {
		if rank[s] > rank[out] {
			out = s
		}
	}
	return out
}

// Worse reports whether a is a worse (higher) status than b.
func Worse(a, b Status) bool { return rank[a] > rank[b] }

// Layer is a layer of an image as the scanner gets it.
type Layer struct {
	MediaType string
	Digest    string
	Size      int64
	// Open reads the layer's (compressed) content.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// Image is an image manifest to scan.
type Image struct {
	// Repository is the full repository name, Digest the manifest's.
	Repository string
	Digest     string
	MediaType  string
	// Manifest is the manifest's content.
	Manifest []byte
	// Config is the image configuration blob (nil if it is not
	// available).
	Config []byte
	Layers []Layer
}

// Result is what a scan found.
type Result struct {
	// Status is the scanner's verdict. With Findings, the registry
	// recomputes it after the account's security scan policies (unless it
	// is Rotten or Unsupported).
	Status Status
	// Report is the scanner's report (JSON), shown by the API.
	Report json.RawMessage
	// Findings are the vulnerabilities found, for the policies.
	Findings []Finding
}

// Finding is one vulnerability found in an image.
type Finding struct {
	ID string
	// Severity is Unknown, Low, Medium, High or Critical.
	Severity    Status
	FixReleased bool
}

// Scanner scans images.
type Scanner interface {
	// Name names the scanner in reports ("builtin", "trivy").
	Name() string
	// Scan scans the image. An error means the scan itself failed (the
	// status becomes Error); content that the scanner cannot handle is a
	// Result with status Unsupported.
	Scan(ctx context.Context, img Image) (Result, error)
}

// imageConfigTypes are the config media types of container images.
var imageConfigTypes = map[string]bool{
	"application/vnd.oci.image.config.v1+json":       true,
	"application/vnd.docker.container.image.v1+json": true,
}

// ContainerImage reports whether the image is a container image (by the
// media type of its config, which it returns): scanners leave other
// manifests (artifacts) Unsupported.
func (img Image) ContainerImage() (configType string, ok bool) {
	var m struct {
		Config struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal(img.Manifest, &m) != nil {
		return "", false
	}
	return m.Config.MediaType, imageConfigTypes[m.Config.MediaType]
}

package e2e

import (
	"encoding/base64"
	"io"
	"strings"
)

func bytesReader(s string) io.Reader { return strings.NewReader(s) }

// decodeSegment decodes one base64url segment of a JWT.
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(s)
}

package errcode

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestTable(t *testing.T) {
	for code := BlobUnknown; code <= Unavailable; code++ {
		d, ok := table[code]
		if !ok {
			t.Fatalf("code %d has no table entry", code)
		}
		if d.wire == "" || d.message == "" || http.StatusText(d.status) == "" {
			t.Errorf("code %d has an incomplete entry: %+v", code, d)
		}
		if d.status < 400 {
			t.Errorf("code %s has non-error status %d", d.wire, d.status)
		}

		rec := httptest.NewRecorder()
		Write(rec, fmt.Errorf("wrapped: %w", &Error{Code: code}))
		if rec.Code != d.status {
			t.Errorf("code %s: status %d, want %d", d.wire, rec.Code, d.status)
		}
		var env envelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("code %s: body is not JSON: %v", d.wire, err)
		}
		if len(env.Errors) != 1 || env.Errors[0].Code != d.wire || env.Errors[0].Message != d.message {
			t.Errorf("code %s: unexpected body %s", d.wire, rec.Body.String())
		}
	}
}

func TestUnknownErrorsAreHidden(t *testing.T) {
	rec := httptest.NewRecorder()
	Write(rec, errors.New("connection to 10.1.2.3 failed: password authentication failed"))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	var env envelope
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatal(err)
	}
	if env.Errors[0].Code != "UNKNOWN" || env.Errors[0].Message != "unknown error" {
		t.Errorf("internal error leaked: %s", rec.Body.String())
	}
}

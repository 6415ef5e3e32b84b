package policy

import (
	"fmt"
	"regexp"
)

// MaxRegexLength is the longest regular expression, in bytes, that a policy
// may contain.
const MaxRegexLength = 1024

// regexCache holds compiled, anchored policy regexes by their source.
var regexCache = newLRUCache[*regexp.Regexp](1024)

// compileAnchored compiles pattern (Go syntax) so that it must match the
// whole input: "library/.*" becomes `\A(?:library/.*)\z`. The pattern must
// compile on its own first, so that a pattern like "a)|(b" cannot escape the
// anchoring group.
func compileAnchored(pattern string) (*regexp.Regexp, error) {
	if rx, ok := regexCache.get(pattern); ok {
		return rx, nil
	}
	if len(pattern) > MaxRegexLength {
		return nil, fmt.Errorf("regular expression is longer than %d bytes", MaxRegexLength)
	}
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	rx, err := regexp.Compile(`\A(?:` + pattern + `)\z`)
	if err != nil {
		return nil, err
	}
	regexCache.put(pattern, rx)
	return rx, nil
}

// validateRegex returns a description of why pattern is not a valid policy
// regex, or "" if it is valid.
func validateRegex(pattern string) string {
	if _, err := compileAnchored(pattern); err != nil {
		return fmt.Sprintf("%q is not a valid regular expression: %s", pattern, err.Error())
	}
	return ""
}

// matchAnchored reports whether the anchored pattern matches s. A pattern
// that does not compile (which validation refuses) matches nothing.
func matchAnchored(pattern, s string) bool {
	rx, err := compileAnchored(pattern)
	return err == nil && rx.MatchString(s)
}

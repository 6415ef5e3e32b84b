package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// Limits of manifest validation rules.
const (
	// MaxRuleLength is the longest rule, in bytes.
	MaxRuleLength = 4096
	// RuleCostLimit bounds the cost of evaluating a rule, in CEL's cost
	// units (roughly one per operation, more for string and list work).
	// [CompileRule] refuses a rule whose worst-case cost, estimated for
	// manifests within the sizes below, is higher, and [Rule.Check] stops an
	// evaluation that gets more expensive (for a larger manifest) with an
	// error.
	RuleCostLimit = 1_000_000
)

// Sizes that the cost estimate of [CompileRule] assumes for its inputs.
// Larger manifests are still checked; only their evaluation cost is bounded
// at run time instead.
const (
	estimatedMaxLayers      = 256  // entries of layers
	estimatedMaxMapEntries  = 256  // entries of labels and annotations
	estimatedMaxKeyLength   = 256  // label and annotation keys
	estimatedMaxValueLength = 4096 // label and annotation values
	estimatedMaxNameLength  = 256  // repo_name, media_type, artifact_type, layer fields
)

// ErrInvalidRule is matched (with errors.Is) by every error of [CompileRule].
var ErrInvalidRule = errors.New("invalid validation rule")

// ErrRuleNotSatisfied is matched (with errors.Is) by every error of
// [Rule.Check]: the manifest is refused.
var ErrRuleNotSatisfied = errors.New("manifest does not satisfy the validation rule")

// Layer is one layer of a manifest, as a rule sees it.
type Layer struct {
	MediaType string
	Digest    string
	Size      int64
}

// ManifestInput is what a manifest validation rule is evaluated over. In the
// rule, the fields are the variables
//
//	repo_name      string               repository name without the account name
//	media_type     string               media type of the manifest
//	labels         map(string, string)  labels of the image configuration
//	                                    (empty for indexes and artifacts without them)
//	layers         list(map(string, dyn))  one map per layer, with the keys
//	                                    "media_type" (string), "digest" (string)
//	                                    and "size" (int); empty for indexes
//	annotations    map(string, string)  annotations of the manifest
//	artifact_type  string               artifact type ("" if none)
//
// Nil maps and slices are given to the rule as empty ones.
type ManifestInput struct {
	RepoName     string
	MediaType    string
	Labels       map[string]string
	Layers       []Layer
	Annotations  map[string]string
	ArtifactType string
}

// activation returns the rule variables for in.
func (in ManifestInput) activation() map[string]any {
	layers := make([]any, len(in.Layers))
	for i, l := range in.Layers {
		layers[i] = map[string]any{"media_type": l.MediaType, "digest": l.Digest, "size": l.Size}
	}
	return map[string]any{
		"repo_name":     in.RepoName,
		"media_type":    in.MediaType,
		"labels":        nonNilMap(in.Labels),
		"layers":        layers,
		"annotations":   nonNilMap(in.Annotations),
		"artifact_type": in.ArtifactType,
	}
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Rule is a compiled manifest validation rule (`validation.rule_for_manifest`):
// a CEL expression of type bool that every pushed manifest must satisfy. A
// Rule is immutable and safe for concurrent use.
type Rule struct {
	expr string
	prog cel.Program
}

// ruleEnv declares the rule variables. It is built once.
var ruleEnv = sync.OnceValues(func() (*cel.Env, error) {
	stringMap := cel.MapType(cel.StringType, cel.StringType)
	return cel.NewEnv(
		cel.Variable("repo_name", cel.StringType),
		cel.Variable("media_type", cel.StringType),
		cel.Variable("labels", stringMap),
		cel.Variable("layers", cel.ListType(cel.MapType(cel.StringType, cel.DynType))),
		cel.Variable("annotations", stringMap),
		cel.Variable("artifact_type", cel.StringType),
		ext.Strings(),
		cel.ParserExpressionSizeLimit(MaxRuleLength),
	)
})

// ruleCache holds compiled rules by expression; only valid rules are cached.
var ruleCache = newLRUCache[*Rule](256)

// CompileRule parses and type-checks a validation rule, estimates its
// worst-case cost, and prepares it for evaluation. Compiled rules are cached
// by expression, so calling it per push is cheap.
//
// An empty (or all-whitespace) expression means "no rule": CompileRule
// returns nil and no error, and a nil *Rule accepts every manifest. Every
// error wraps ErrInvalidRule and carries CEL's message, which points at the
// offending position in the expression.
func CompileRule(expr string) (*Rule, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	if r, ok := ruleCache.get(expr); ok {
		return r, nil
	}
	if len(expr) > MaxRuleLength {
		return nil, fmt.Errorf("%w: it is %d bytes long, but at most %d are allowed",
			ErrInvalidRule, len(expr), MaxRuleLength)
	}
	env, err := ruleEnv()
	if err != nil {
		return nil, fmt.Errorf("building the CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidRule, iss.Err().Error())
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("%w: it must evaluate to bool, but evaluates to %s",
			ErrInvalidRule, ast.OutputType())
	}
	est, err := env.EstimateCost(ast, sizeHints{})
	if err != nil {
		return nil, fmt.Errorf("%w: estimating its cost: %s", ErrInvalidRule, err.Error())
	}
	if est.Max > RuleCostLimit {
		return nil, fmt.Errorf("%w: it is too expensive: its estimated worst-case cost is %s, but at most %d is allowed "+
			"(assuming up to %d layers and %d labels or annotations)",
			ErrInvalidRule, costString(est.Max), RuleCostLimit, estimatedMaxLayers, estimatedMaxMapEntries)
	}
	prog, err := env.Program(ast, cel.CostLimit(RuleCostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidRule, err.Error())
	}
	r := &Rule{expr: expr, prog: prog}
	ruleCache.put(expr, r)
	return r, nil
}

// costString renders an estimated cost, which may be "unbounded".
func costString(c uint64) string {
	if c == ^uint64(0) {
		return "unbounded"
	}
	return fmt.Sprintf("%d", c)
}

// String returns the expression of the rule ("" for a nil rule).
func (r *Rule) String() string {
	if r == nil {
		return ""
	}
	return r.expr
}

// Check evaluates the rule for a manifest. It returns nil if the rule holds
// (or r is nil), and a *RuleError if the rule evaluates to false or fails
// while evaluating (for example when it reads a label that the image does
// not have, or gets too expensive).
func (r *Rule) Check(in ManifestInput) error {
	if r == nil {
		return nil
	}
	out, _, err := r.prog.Eval(in.activation())
	if err != nil {
		return &RuleError{Rule: r.expr, Err: err}
	}
	if ok, isBool := out.(types.Bool); !isBool {
		return &RuleError{Rule: r.expr, Err: fmt.Errorf("the rule evaluated to %s instead of bool", out.Type())}
	} else if !ok {
		return &RuleError{Rule: r.expr}
	}
	return nil
}

// RuleError is the error of [Rule.Check]: the manifest is refused because
// the rule evaluated to false (Err is nil) or failed (Err says why).
type RuleError struct {
	// Rule is the expression of the rule.
	Rule string
	// Err is the evaluation error, or nil if the rule evaluated to false.
	Err error
}

// maxRuleInMessage is how much of a rule an error message quotes.
const maxRuleInMessage = 200

// Error implements the error interface, quoting the rule (shortened when
// it is long).
func (e *RuleError) Error() string {
	rule := e.Rule
	if len(rule) > maxRuleInMessage {
		rule = strings.ToValidUTF8(rule[:maxRuleInMessage], "") + "…"
	}
	if e.Err == nil {
		return fmt.Sprintf("manifest does not satisfy the validation rule %q", rule)
	}
	return fmt.Sprintf("manifest could not be checked against the validation rule %q: %s", rule, e.Err.Error())
}

// Unwrap makes errors.Is(err, ErrRuleNotSatisfied) true, and exposes the
// evaluation error, if any.
func (e *RuleError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrRuleNotSatisfied}
	}
	return []error{ErrRuleNotSatisfied, e.Err}
}

// sizeHints tells CEL's cost estimator how large the rule inputs may be.
type sizeHints struct{}

// hintedSizes are the maximum sizes by path of variable, field and
// container element ("@items", "@keys", "@values").
var hintedSizes = map[string]uint64{
	"repo_name":             estimatedMaxNameLength,
	"media_type":            estimatedMaxNameLength,
	"artifact_type":         estimatedMaxNameLength,
	"labels":                estimatedMaxMapEntries,
	"labels.@keys":          estimatedMaxKeyLength,
	"labels.@values":        estimatedMaxValueLength,
	"annotations":           estimatedMaxMapEntries,
	"annotations.@keys":     estimatedMaxKeyLength,
	"annotations.@values":   estimatedMaxValueLength,
	"layers":                estimatedMaxLayers,
	"layers.@items":         3,
	"layers.@items.@keys":   uint64(len("media_type")),
	"layers.@items.@values": estimatedMaxNameLength,
}

// EstimateSize implements cost.Estimator.
func (sizeHints) EstimateSize(node cost.AstNode) *cost.SizeEstimate {
	if sz, ok := hintedSizes[strings.Join(node.Path(), ".")]; ok {
		est := cost.RangedSizeEstimate(0, sz)
		return &est
	}
	return nil
}

// EstimateCallCost implements cost.Estimator; CEL's own estimates are used.
func (sizeHints) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

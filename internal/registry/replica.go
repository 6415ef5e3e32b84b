package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/singleflight"

	"keppel/internal/db"
	"keppel/internal/models"
	"keppel/internal/oci"
	"keppel/internal/upstream"
)

// Errors of replica accounts, when their upstream fails.
var (
	// ErrUpstreamFailed: the upstream registry could not be reached or
	// answered with an error other than "not found".
	ErrUpstreamFailed = errors.New("upstream registry failed")
	// ErrUpstreamRateLimited: the upstream registry answered 429; the
	// error is an *UpstreamRateLimitError with its Retry-After.
	ErrUpstreamRateLimited = errors.New("upstream registry rate limit reached")
)

// UpstreamRateLimitError is ErrUpstreamRateLimited with the upstream's
// Retry-After header ("" if it sent none).
type UpstreamRateLimitError struct {
	RetryAfter string
	Message    string
}

// Error implements error.
func (e *UpstreamRateLimitError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrUpstreamRateLimited) true.
func (e *UpstreamRateLimitError) Is(target error) bool { return target == ErrUpstreamRateLimited }

// PeerDirectory knows the peer registries of this one: their URLs, and the
// credentials that this registry logs in with there.
type PeerDirectory interface {
	PeerURL(hostname string) (string, bool)
	Credentials(ctx context.Context, hostname string) (username, password string, err error)
}

// ReplicationSettings configure replica accounts.
type ReplicationSettings struct {
	// Peers are the peer registries (nil: none, so on_first_use replicas
	// cannot reach their upstream).
	Peers PeerDirectory
	// TagLifetime is how long a tag of a from_external_on_first_use
	// account is served before the upstream is asked again where it
	// points (DefaultTagLifetime if zero).
	TagLifetime time.Duration
	// Transport carries the requests to upstream registries
	// (http.DefaultTransport if nil).
	Transport http.RoundTripper
	// SpoolDir holds the temporary copies of blobs while they are fetched
	// (os.TempDir() if empty).
	SpoolDir string
}

// DefaultTagLifetime is how long a tag of a pull-through account is served
// before the upstream is asked again.
const DefaultTagLifetime = 5 * time.Minute

// replicaTimeout bounds the replication of one manifest with its children.
const replicaTimeout = 5 * time.Minute

// maxIndexDepth bounds the nesting of indexes that are replicated.
const maxIndexDepth = 4

// WithReplication configures replica accounts.
func WithReplication(r ReplicationSettings) Option {
	return func(s *Service) {
		if r.TagLifetime <= 0 {
			r.TagLifetime = DefaultTagLifetime
		}
		s.replication = r
	}
}

// replicaState is what the service keeps about replication in memory.
type replicaState struct {
	manifests singleflight.Group
	clientsMu sync.Mutex
	clients   map[string]*upstream.Registry
	// tagChecks is when a tag of a pull-through account was last compared
	// with the upstream, by "<repository ID>:<tag>".
	tagChecks sync.Map
	blobs     blobFetches
}

// isReplica reports whether the account replicates another one.
func isReplica(a models.Account) bool { return a.ReplicationJSON != "" }

// PullManifest resolves a tag or digest in a repository for a pull. In a
// replica account, a manifest that is not here yet is fetched from the
// upstream and stored (with its child manifests, and with its blobs
// recorded, to be fetched on their first pull); a tag of a pull-through
// account is compared with the upstream once its lifetime is over.
func (s *Service) PullManifest(ctx context.Context, fullName, reference string) (Repo, models.ManifestWithContent, error) {
	account, name, err := s.findAccount(ctx, fullName)
	if err != nil {
		return Repo{}, models.ManifestWithContent{}, err
	}
	unknownRepo := fmt.Errorf("%w: repository %s is not known to the registry", ErrRepositoryUnknown, fullName)
	if account.IsDeleting {
		return Repo{}, models.ManifestWithContent{}, unknownRepo
	}
	r, err := s.db.GetRepository(ctx, account.Name, name)
	switch {
	case err == nil:
		repo := Repo{Account: account, Repository: r}
		m, err := s.GetManifest(ctx, repo, reference)
		if err == nil {
			if s.tagCheckDue(repo, reference) {
				return s.refreshTag(ctx, repo, reference, m)
			}
			return repo, m, nil
		}
		if !errors.Is(err, ErrManifestUnknown) || !isReplica(account) {
			return repo, m, err
		}
	case errors.Is(err, db.ErrNotFound):
		if !isReplica(account) {
			return Repo{}, models.ManifestWithContent{}, unknownRepo
		}
	default:
		return Repo{}, models.ManifestWithContent{}, fmt.Errorf("looking up repository: %w", err)
	}
	if !oci.IsDigest(reference) && !oci.ValidTag(reference) {
		return Repo{}, models.ManifestWithContent{}, fmt.Errorf("%w: %q is neither a valid tag nor a digest", ErrTagInvalid, reference)
	}
	return s.replicateManifest(ctx, account, name, reference)
}

// replicateManifest fetches a manifest from the account's upstream and
// stores it (one fetch for concurrent pulls of the same reference).
func (s *Service) replicateManifest(ctx context.Context, account models.Account, name, reference string) (Repo, models.ManifestWithContent, error) {
	type result struct {
		repo Repo
		m    models.ManifestWithContent
	}
	ch := s.replicas.manifests.DoChan(account.Name+"/"+name+"@"+reference, func() (any, error) {
		// The fetch serves every waiting client, so one leaving does
		// not cancel it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaTimeout)
		defer cancel()
		up, upName, err := s.upstreamOf(ctx, account, name)
		if err != nil {
			return nil, err
		}
		m, err := up.GetManifest(ctx, upName, reference)
		if err != nil {
			return nil, upstreamError(err, fmt.Errorf("%w: manifest %s is not known in repository %s/%s", ErrManifestUnknown, reference, account.Name, name))
		}
		r, err := s.db.FindOrCreateRepository(ctx, account.Name, name)
		if err != nil {
			return nil, fmt.Errorf("creating repository: %w", err)
		}
		repo := Repo{Account: account, Repository: r}
		tag := ""
		if !oci.IsDigest(reference) {
			tag = reference
		}
		if err := s.storeReplicated(ctx, repo, up, upName, m, tag, 0); err != nil {
			return nil, err
		}
		if tag != "" {
			s.replicas.tagChecks.Store(tagCheckKey(repo, tag), s.now())
		}
		stored, err := s.GetManifest(ctx, repo, m.Digest.String())
		if err != nil {
			return nil, err
		}
		return result{repo, stored}, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Repo{}, models.ManifestWithContent{}, res.Err
		}
		v := res.Val.(result)
		return v.repo, v.m, nil
	case <-ctx.Done():
		return Repo{}, models.ManifestWithContent{}, fmt.Errorf("waiting for the upstream: %w", ctx.Err())
	}
}

// storeReplicated stores a manifest fetched from the upstream, after its
// child manifests (those that the account's platform filter lets
// through). Its blobs are recorded without content if the account does not
// have them; they are fetched on their first pull.
func (s *Service) storeReplicated(ctx context.Context, repo Repo, up *upstream.Registry, upName string, um upstream.Manifest, tag string, depth int) error {
	d := um.Digest.String()
	if existing, err := s.db.GetManifest(ctx, repo.ID, d); err == nil {
		if tag == "" {
			return nil
		}
		existing.PushedAt = s.now() // the time of the tag
		if err := s.db.PutManifest(ctx, existing, nil, nil, tag); err != nil {
			return fmt.Errorf("tagging replicated manifest: %w", err)
		}
		return nil
	} else if !errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("looking up manifest: %w", err)
	}
	parsed, err := oci.ParseManifest(um.MediaType, um.Content)
	if err != nil {
		return fmt.Errorf("%w: %s served manifest %s that is not valid: %s", ErrUpstreamFailed, up.Host(), d, err.Error())
	}
	filter, err := platformFilter(repo.Account)
	if err != nil {
		return err
	}
	children := make([]string, 0, len(parsed.Manifests))
	for _, desc := range parsed.Manifests {
		if !filter.matches(desc.Platform) {
			continue
		}
		if depth >= maxIndexDepth {
			return fmt.Errorf("%w: indexes from %s are nested too deeply", ErrUpstreamFailed, up.Host())
		}
		if _, err := s.db.GetManifest(ctx, repo.ID, desc.Digest.String()); err != nil {
			child, err := up.GetManifest(ctx, upName, desc.Digest.String())
			if err != nil {
				return upstreamError(err, fmt.Errorf("%w: %s lists manifest %s in an index, but does not serve it", ErrUpstreamFailed, up.Host(), desc.Digest))
			}
			if int64(len(child.Content)) != desc.Size {
				return fmt.Errorf("%w: manifest %s from %s has %d bytes, its index says %d", ErrUpstreamFailed, desc.Digest, up.Host(), len(child.Content), desc.Size)
			}
			if err := s.storeReplicated(ctx, repo, up, upName, child, "", depth+1); err != nil {
				return err
			}
		}
		children = append(children, desc.Digest.String())
	}
	blobIDs := make([]int64, 0, len(parsed.Blobs))
	for _, desc := range parsed.Blobs {
		id, err := s.replicaBlobRow(ctx, repo, desc)
		if err != nil {
			return err
		}
		blobIDs = append(blobIDs, id)
	}
	if err := s.checkManifestQuota(ctx, repo); err != nil {
		return err
	}
	m := models.ManifestWithContent{
		Manifest: models.Manifest{RepositoryID: repo.ID, Digest: d, MediaType: parsed.MediaType,
			SizeBytes: int64(len(um.Content)), PushedAt: s.now(), ArtifactType: parsed.ArtifactType},
		Content: um.Content,
	}
	if parsed.Subject != nil {
		m.SubjectDigest = parsed.Subject.Digest.String()
	}
	if len(parsed.Annotations) > 0 {
		buf, err := json.Marshal(parsed.Annotations)
		if err != nil {
			return fmt.Errorf("encoding annotations: %w", err)
		}
		m.AnnotationsJSON = string(buf)
	}
	if err := s.db.PutManifest(ctx, m, blobIDs, children, tag); err != nil {
		return fmt.Errorf("storing replicated manifest %s: %w", d, err)
	}
	s.queueCopy(repo, d, um.Content)
	return nil
}

// replicaBlobRow returns the ID of the blob of the descriptor in the
// repository: mounted from the account if the account has it, or else
// recorded without content.
func (s *Service) replicaBlobRow(ctx context.Context, repo Repo, desc imagespec.Descriptor) (int64, error) {
	b, err := s.db.GetBlobInRepository(ctx, repo.ID, desc.Digest.String())
	if err == nil {
		if b.SizeBytes != desc.Size {
			return 0, fmt.Errorf("%w: blob %s has %d bytes here, the upstream's manifest says %d", ErrUpstreamFailed, desc.Digest, b.SizeBytes, desc.Size)
		}
		return b.ID, nil
	}
	if !errors.Is(err, db.ErrNotFound) {
		return 0, fmt.Errorf("looking up blob: %w", err)
	}
	if desc.Size < 0 {
		return 0, fmt.Errorf("%w: blob %s has a negative size", ErrUpstreamFailed, desc.Digest)
	}
	b, _, err = s.db.CreateBlobAndMount(ctx, models.Blob{AccountName: repo.Account.Name, Digest: desc.Digest.String(),
		SizeBytes: desc.Size, MediaType: desc.MediaType, PushedAt: s.now()}, repo.ID)
	if err != nil {
		return 0, fmt.Errorf("recording replicated blob %s: %w", desc.Digest, err)
	}
	if b.SizeBytes != desc.Size {
		return 0, fmt.Errorf("%w: blob %s has %d bytes here, the upstream's manifest says %d", ErrUpstreamFailed, desc.Digest, b.SizeBytes, desc.Size)
	}
	return b.ID, nil
}

func tagCheckKey(repo Repo, tag string) string { return fmt.Sprint(repo.ID, ":", tag) }

// tagCheckDue reports whether a pull by tag in a pull-through account
// should ask the upstream where the tag points now.
func (s *Service) tagCheckDue(repo Repo, reference string) bool {
	if oci.IsDigest(reference) || externalUpstreamOf(repo.Account) == nil {
		return false
	}
	last, ok := s.replicas.tagChecks.Load(tagCheckKey(repo, reference))
	return !ok || s.now().Sub(last.(time.Time)) >= s.replication.TagLifetime
}

// refreshTag asks the upstream where a tag points and follows it. The
// local manifest is served while the upstream cannot be reached.
func (s *Service) refreshTag(ctx context.Context, repo Repo, tag string, local models.ManifestWithContent) (Repo, models.ManifestWithContent, error) {
	key := tagCheckKey(repo, tag)
	up, upName, err := s.upstreamOf(ctx, repo.Account, repo.Name)
	if err == nil {
		var desc upstream.Descriptor
		desc, err = up.HeadManifest(ctx, upName, tag)
		if err == nil && desc.Digest.String() == local.Digest {
			s.replicas.tagChecks.Store(key, s.now())
			return repo, local, nil
		}
		if err == nil {
			var m models.ManifestWithContent
			repo2, m, err2 := s.replicateManifest(ctx, repo.Account, repo.Name, tag)
			if err2 == nil {
				return repo2, m, nil
			}
			err = err2
		}
	}
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.NotFound() {
		s.log.Info("tag is gone from the upstream; serving the replicated one", "repository", repo.FullName(), "tag", tag)
	} else {
		s.log.Warn("cannot check a tag with the upstream; serving the replicated one", "repository", repo.FullName(), "tag", tag, "error", err)
	}
	// Checked, if unsuccessfully: the next pulls do not wait for the
	// upstream again before the lifetime is over.
	s.replicas.tagChecks.Store(key, s.now())
	return repo, local, nil
}

// ReplicateReferrers fetches the manifests that refer to d from the
// upstream of a replica account, so that the referrers API lists them.
// Failures of the upstream are logged: the referrers known here are
// listed then.
func (s *Service) ReplicateReferrers(ctx context.Context, repo Repo, d string) {
	if !isReplica(repo.Account) {
		return
	}
	up, upName, err := s.upstreamOf(ctx, repo.Account, repo.Name)
	if err == nil {
		err = s.replicateReferrers(ctx, repo, up, upName, d)
	}
	if err != nil {
		s.log.Warn("cannot list referrers at the upstream; listing those replicated", "repository", repo.FullName(), "digest", d, "error", err)
	}
}

func (s *Service) replicateReferrers(ctx context.Context, repo Repo, up *upstream.Registry, upName, d string) error {
	dd, err := oci.ParseDigest(d)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrDigestInvalid, err.Error())
	}
	descs, err := up.Referrers(ctx, upName, dd)
	if err != nil {
		return err
	}
	for _, desc := range descs {
		if _, err := s.db.GetManifest(ctx, repo.ID, desc.Digest.String()); err == nil {
			continue
		}
		m, err := up.GetManifest(ctx, upName, desc.Digest.String())
		if err != nil {
			return err
		}
		if err := s.storeReplicated(ctx, repo, up, upName, m, "", 0); err != nil {
			return err
		}
	}
	return nil
}

// upstreamError turns an error of the upstream client into a domain
// error; notFound is returned for a 404.
func upstreamError(err, notFound error) error {
	var ue *upstream.Error
	if errors.As(err, &ue) {
		switch {
		case ue.NotFound():
			return notFound
		case ue.Status == http.StatusTooManyRequests:
			return &UpstreamRateLimitError{RetryAfter: ue.RetryAfter, Message: ue.Error()}
		}
		return fmt.Errorf("%w: %s", ErrUpstreamFailed, ue.Error())
	}
	if errors.Is(err, upstream.ErrUnreachable) {
		return fmt.Errorf("%w: %s", ErrUpstreamFailed, err.Error())
	}
	return err
}

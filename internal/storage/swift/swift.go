// Package swift is the storage driver for OpenStack Swift (and Swift APIs
// such as Ceph RGW's). Every account has its own container, named
// <container_prefix><account>, with the objects
//
//	<tenant>/s/<storage-id>/<n>        chunk n of an upload, a segment of the blob
//	<tenant>/b/<storage-id>            finished blob: a static large object
//	<tenant>/m/<repo/path>/<digest>    manifest copy
//
// Each uploaded chunk is stored as one object, streamed as it arrives
// (Swift PUTs are atomic: a chunk that breaks off leaves the previous
// version or nothing). The object records where the chunk starts in the
// blob, so any process can check the offset of the next chunk. Finishing the
// upload writes a static large object manifest that lists the chunks: the
// content is never copied again, and deleting the blob deletes its
// segments.
package swift

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ncw/swift/v2"

	"keppel/internal/models"
	"keppel/internal/storage"
)

// Config configures the driver.
type Config struct {
	// AuthURL is the identity endpoint (Keystone v3, v2, or TempAuth v1).
	AuthURL string
	// UserName and Password (the API key for v1) of the service user.
	UserName, Password string
	// UserDomain, Project and ProjectDomain scope the Keystone v3 token.
	UserDomain, Project, ProjectDomain string
	// Region selects the object-store endpoint (optional).
	Region string
	// ContainerPrefix starts every account's container name.
	ContainerPrefix string
	// TempURLKey is the account's Temp-URL-Key, needed to sign download
	// URLs (BlobURL).
	TempURLKey string
	// Transport replaces the HTTP transport (optional).
	Transport http.RoundTripper
}

// Driver is the Swift storage driver. It is safe for concurrent use, also
// by many processes, as long as each upload is written by one caller at a
// time.
type Driver struct {
	conn *swift.Connection
	cfg  Config
	// containers remembers the containers known to exist.
	containers sync.Map
}

var (
	_ storage.Driver        = (*Driver)(nil)
	_ storage.BlobURLSigner = (*Driver)(nil)
)

// New returns a driver; it authenticates on the first request.
func New(cfg Config) (*Driver, error) {
	if cfg.AuthURL == "" || cfg.UserName == "" {
		return nil, errors.New("swift storage: an auth URL and a user name are required")
	}
	if len(cfg.ContainerPrefix) > 200 || strings.Contains(cfg.ContainerPrefix, "/") {
		return nil, fmt.Errorf("swift storage: container prefix %q must be shorter than 200 bytes and contain no slash", cfg.ContainerPrefix)
	}
	conn := &swift.Connection{
		AuthUrl: cfg.AuthURL, UserName: cfg.UserName, ApiKey: cfg.Password,
		Domain: cfg.UserDomain, Tenant: cfg.Project, TenantDomain: cfg.ProjectDomain, Region: cfg.Region,
		Transport: cfg.Transport, Timeout: 5 * time.Minute,
	}
	return &Driver{conn: conn, cfg: cfg}, nil
}

// Check authenticates, which shows that the credentials work.
func (d *Driver) Check(ctx context.Context) error {
	if err := d.conn.Authenticate(ctx); err != nil {
		return fmt.Errorf("swift storage: authenticating at %s: %w", d.cfg.AuthURL, err)
	}
	return nil
}

// area is where one account's content lives.
type area struct {
	container string
	prefix    string // <tenant>/
	desc      string
}

func (d *Driver) area(ref models.StorageRef) (area, error) {
	if err := storage.ValidateRef(ref); err != nil {
		return area{}, err
	}
	container := d.cfg.ContainerPrefix + ref.AccountName
	if len(container) > 256 {
		sum := sha256.Sum256([]byte(ref.AccountName))
		container = d.cfg.ContainerPrefix + "h." + hex.EncodeToString(sum[:20])
	}
	return area{container: container, prefix: ref.AuthTenantID + "/", desc: fmt.Sprintf("account %s/%s", ref.AuthTenantID, ref.AccountName)}, nil
}

func (a area) blobKey(storageID string) string        { return a.prefix + "b/" + storageID }
func (a area) segmentDir(storageID string) string     { return a.prefix + "s/" + storageID + "/" }
func (a area) manifestKey(repo, digest string) string { return a.prefix + "m/" + repo + "/" + digest }
func (a area) segmentKey(storageID string, chunk uint32) string {
	return fmt.Sprintf("%s%010d", a.segmentDir(storageID), chunk)
}

// ensureContainer creates the account's container if this process has not
// seen it yet (a PUT of an existing container changes nothing).
func (d *Driver) ensureContainer(ctx context.Context, a area) error {
	if _, ok := d.containers.Load(a.container); ok {
		return nil
	}
	if err := d.conn.ContainerCreate(ctx, a.container, nil); err != nil {
		return fmt.Errorf("creating container %s for %s: %w", a.container, a.desc, err)
	}
	d.containers.Store(a.container, struct{}{})
	return nil
}

// withContainer runs a write, creating the container first if needed and
// once more if another process deleted it in between.
func (d *Driver) withContainer(ctx context.Context, a area, write func() error) error {
	if err := d.ensureContainer(ctx, a); err != nil {
		return err
	}
	err := write()
	if errors.Is(err, swift.ContainerNotFound) || isStatus(err, http.StatusNotFound) {
		d.containers.Delete(a.container)
		if err := d.ensureContainer(ctx, a); err != nil {
			return err
		}
		err = write()
	}
	return err
}

// isStatus reports whether err is a Swift error with the HTTP status.
func isStatus(err error, status int) bool {
	var se *swift.Error
	return errors.As(err, &se) && se.StatusCode == status
}

// wrap adds context to err, turning "does not exist" into
// storage.ErrNotFound.
func wrap(err error, what string) error {
	if errors.Is(err, swift.ObjectNotFound) || errors.Is(err, swift.ContainerNotFound) || isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// BlobURL implements storage.BlobURLSigner with a Swift temporary URL
// (needs Config.TempURLKey and the tempurl middleware).
func (d *Driver) BlobURL(ctx context.Context, ref models.StorageRef, storageID string, ttl time.Duration) (string, error) {
	a, err := d.area(ref)
	if err != nil {
		return "", err
	}
	if err := storage.ValidateStorageID(storageID); err != nil {
		return "", err
	}
	if d.cfg.TempURLKey == "" {
		return "", errors.New("swift storage: no temp URL key is configured")
	}
	if !d.conn.Authenticated() {
		if err := d.conn.Authenticate(ctx); err != nil {
			return "", fmt.Errorf("swift storage: authenticating: %w", err)
		}
	}
	return d.conn.ObjectTempUrl(a.container, a.blobKey(storageID), d.cfg.TempURLKey, http.MethodGet, time.Now().Add(ttl)), nil
}

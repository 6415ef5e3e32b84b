package loadgen

import (
	"fmt"
	"strconv"
)

// DistributionConfig returns the configuration of a CNCF Distribution
// registry as the benchmarks run it: filesystem storage under rootDir,
// deletes enabled, access log off, listening on addr (loopback).
func DistributionConfig(rootDir, addr string) string {
	return distributionConfig(fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", rootDir), addr)
}

// S3Bucket is a bucket on an S3 server that a benchmark target stores its
// content in.
type S3Bucket struct {
	Endpoint, Region, AccessKey, SecretKey, Bucket string
}

// DistributionS3Config is DistributionConfig with the registry's S3 driver
// storing into the bucket (path-style addressing, plain HTTP on loopback).
// With redirect, blob GETs are answered with redirects to presigned URLs
// (Distribution's default); without, the registry serves the content
// itself.
func DistributionS3Config(b S3Bucket, addr string, redirect bool) string {
	redirectSection := "  redirect:\n    disable: true\n"
	if redirect {
		redirectSection = ""
	}
	return distributionConfig(redirectSection+fmt.Sprintf(`  s3:
    accesskey: %s
    secretkey: %s
    region: %s
    regionendpoint: %s
    bucket: %s
    forcepathstyle: true
    secure: false
    v4auth: true
`, b.AccessKey, b.SecretKey, b.Region, b.Endpoint, b.Bucket), addr)
}

func distributionConfig(storage, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
%s  delete:
    enabled: true
http:
  addr: %s
`, storage, addr)
}

// KeppelS3Env returns the environment that makes keppel store its content
// in the bucket, redirecting blob GETs to presigned URLs with redirect.
func KeppelS3Env(b S3Bucket, redirect bool) []string {
	return []string{
		"KEPPEL_S3_REDIRECT_BLOB_GETS=" + strconv.FormatBool(redirect),
		"KEPPEL_STORAGE_DRIVER=s3",
		"KEPPEL_S3_ENDPOINT=" + b.Endpoint,
		"KEPPEL_S3_REGION=" + b.Region,
		"KEPPEL_S3_ACCESS_KEY_ID=" + b.AccessKey,
		"KEPPEL_S3_SECRET_ACCESS_KEY=" + b.SecretKey,
		"KEPPEL_S3_PATH_STYLE=true",
		"KEPPEL_S3_BUCKET=" + b.Bucket,
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"keppel/internal/loadgen"
)

// benchS3 is the S3 server (versitygw over a temporary directory) that
// the targets of `keppel bench compare --s3-server` store their content in.
type benchS3 struct {
	proc   *benchProcess
	base   loadgen.S3Bucket
	client *s3.Client
}

func startS3ForBench(ctx context.Context, bin string, progress io.Writer) (*benchS3, error) {
	dir, err := os.MkdirTemp("", "keppel-bench-s3-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"data", "iam"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	addr, err := freeLoopbackAddress()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	b := loadgen.S3Bucket{Endpoint: "http://" + addr, Region: "us-east-1", AccessKey: "bench", SecretKey: randomHex(16)}
	fmt.Fprintf(progress, "starting the S3 server (versitygw) on %s\n", b.Endpoint)
	args := []string{"--port", addr, "--access", b.AccessKey, "--secret", b.SecretKey, "--region", b.Region,
		"--iam-dir", filepath.Join(dir, "iam"), "--health", "/health", "--keep-alive", "--quiet",
		"posix", filepath.Join(dir, "data")}
	p, err := startBenchProcess(ctx, "s3", dir, bin, args, nil, func() bool {
		status, err := httpStatus(http.MethodGet, b.Endpoint+"/health", "", "", nil)
		return err == nil && status == http.StatusOK
	})
	if p == nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &benchS3{proc: p, base: b}
	s.client = s3.New(s3.Options{
		Region: b.Region, BaseEndpoint: aws.String(b.Endpoint), UsePathStyle: true,
		Credentials:                credentials.NewStaticCredentialsProvider(b.AccessKey, b.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return s, err
}

// bucket creates a bucket for one target.
func (s *benchS3) bucket(ctx context.Context, name string) (loadgen.S3Bucket, error) {
	b := s.base
	b.Bucket = name
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return b, fmt.Errorf("creating bucket %s: %w", name, err)
	}
	return b, nil
}

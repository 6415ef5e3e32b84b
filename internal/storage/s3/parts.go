package s3

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// partPipeline uploads each full part in the background while the next one
// is being received, so that receiving from the client and sending to S3
// overlap. At most one part is in flight: an upload request holds two part
// buffers at most.
type partPipeline struct {
	d        *Driver
	ctx      context.Context
	u        upload
	st       *chunkState
	inflight chan partResult // nil when no part is in flight
	bufs     []*[]byte       // buffers taken from the pool
}

type partResult struct {
	etag string
	size int
	err  error
}

func (d *Driver) newPartPipeline(ctx context.Context, u upload, st *chunkState) *partPipeline {
	return &partPipeline{d: d, ctx: ctx, u: u, st: st}
}

// buffer returns a part buffer that is not in flight.
func (p *partPipeline) buffer(inUse *[]byte) *[]byte {
	for _, b := range p.bufs {
		if b != inUse {
			return b
		}
	}
	b := p.d.buffers.Get().(*[]byte)
	p.bufs = append(p.bufs, b)
	return b
}

// send starts uploading part as the next part, after the one in flight has
// been stored. part must stay untouched until the next send or wait.
func (p *partPipeline) send(part []byte) error {
	if err := p.wait(); err != nil {
		return err
	}
	if len(p.st.PartETags) >= maxParts-1 {
		return fmt.Errorf("%s: the blob would need more than %d parts of %d bytes", p.u.what, maxParts, p.d.partSize)
	}
	if p.st.UploadID == "" {
		id, err := p.d.startMultipart(p.ctx, p.u)
		if err != nil {
			return err
		}
		p.st.UploadID = id
	}
	number := int32(len(p.st.PartETags) + 1)
	ch := make(chan partResult, 1)
	p.inflight = ch
	go func() {
		out, err := p.d.client.UploadPart(p.ctx, &s3.UploadPartInput{
			Bucket: aws.String(p.u.bucket), Key: aws.String(p.u.blobKey()), UploadId: aws.String(p.st.UploadID),
			PartNumber: aws.Int32(number), Body: bytes.NewReader(part), ContentLength: aws.Int64(int64(len(part))),
		})
		if err != nil {
			ch <- partResult{err: wrap(err, fmt.Sprintf("%s: uploading part %d", p.u.what, number))}
			return
		}
		ch <- partResult{etag: aws.ToString(out.ETag), size: len(part)}
	}()
	return nil
}

// wait waits for the part in flight and records it in the state.
func (p *partPipeline) wait() error {
	if p.inflight == nil {
		return nil
	}
	r := <-p.inflight
	p.inflight = nil
	if r.err != nil {
		return r.err
	}
	p.st.PartETags = append(p.st.PartETags, r.etag)
	p.st.PartsBytes += int64(r.size)
	return nil
}

// close waits for the part in flight and returns the buffers to the pool.
func (p *partPipeline) close() {
	_ = p.wait()
	for _, b := range p.bufs {
		p.d.buffers.Put(b)
	}
	p.bufs = nil
}

package kube

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/petrel-dev/petrel/internal/backend"
)

var _ backend.JobTableLister = (*Backend)(nil)

// ListJobsForTable lists every petrel Job in the namespace with what
// `petrel get jobs` shows in its table: name, labels, phase, attempts,
// failures against the Job's own spec.backoffLimit, start, completion and
// creation times. Spec is left empty but for BackoffLimit; attempts carry
// no podFailurePolicy (Ignored is never set).
//
// It reads the same two lists as ListJobs (Jobs, and pods meanwhile), in
// protobuf, but decodes only those fields: each item's bytes are cut down
// to them (fieldsOfJobTable, fieldsOfPodTable) before the generated
// Unmarshal runs, so the pod template, managed protoFields and annotations
// (petrel's spec among them: most of a Job's 2.4 KB) are skipped, never
// allocated. kubectl's own answer, the server-side Table, cannot serve
// here: its job columns have neither status.failed nor backoffLimit.
func (b *Backend) ListJobsForTable(ctx context.Context) ([]backend.Job, error) {
	ns := b.ns
	sel := LabelManagedBy + "=" + ManagedBy + "," + LabelKind + "=" + KindJob
	var pods []*corev1.Pod
	var podErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		podErr = listTrimmed(ctx, b.cs.CoreV1().RESTClient(), "pods", ns, sel, fieldsOfPodTable, func(item []byte) error {
			p := &corev1.Pod{}
			if err := p.Unmarshal(item); err != nil {
				return err
			}
			pods = append(pods, p)
			return nil
		})
	}()
	var jobs []*batchv1.Job
	err := listTrimmed(ctx, b.cs.BatchV1().RESTClient(), "jobs", ns, sel, fieldsOfJobTable, func(item []byte) error {
		j := &batchv1.Job{}
		if err := j.Unmarshal(item); err != nil {
			return err
		}
		jobs = append(jobs, j)
		return nil
	})
	wg.Wait()
	if err != nil {
		return nil, b.explain(err, "list", "jobs.batch", ns, "")
	}
	if podErr != nil {
		return nil, b.explain(podErr, "list", "pods", ns, "")
	}
	podsOf := map[string][]corev1.Pod{}
	for _, p := range pods {
		w := p.Labels[LabelWorkload]
		podsOf[w] = append(podsOf[w], *p)
	}
	out := make([]backend.Job, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, jobStatus(j, podsOf[j.Name]))
	}
	sortJobs(out)
	return out, nil
}

// protoFields names the protobuf fields of a message to keep: a field whose
// entry is nil is kept whole, one with entries is cut down to those.
type protoFields map[protowire.Number]protoFields

// objectMetaOfTable: name, namespace, creationTimestamp, deletionTimestamp
// and labels of an ObjectMeta (k8s.io/apimachinery meta/v1 generated.proto).
var objectMetaOfTable = protoFields{1: nil, 3: nil, 8: nil, 9: nil, 11: nil}

// fieldsOfJobTable is what jobStatus reads of a batch/v1 Job for the table:
// metadata (objectMetaOfTable), spec.backoffLimit (7) and spec.suspend
// (10), and the whole status.
var fieldsOfJobTable = protoFields{1: objectMetaOfTable, 2: {7: nil, 10: nil}, 3: nil}

// fieldsOfPodTable is what attemptOf reads of a pod: metadata, spec.nodeName
// (10) and the whole status.
var fieldsOfPodTable = protoFields{1: objectMetaOfTable, 2: {7: nil, 10: nil}, 3: nil}

// protobufMagic starts every Kubernetes protobuf body (runtime.Unknown
// follows).
var protobufMagic = []byte("k8s\x00")

// listTrimmed lists resource in namespace ns (label selector sel) in one
// protobuf request and calls add with each item cut down to keep. The
// response is read as a stream, item by item, so the whole list (24 MB
// for 10,000 Jobs) is never in memory. A server that answers JSON (it
// never does for built-in kinds) is decoded in full and re-encoded, so
// add sees the same bytes either way.
func listTrimmed(ctx context.Context, rc rest.Interface, resource, ns, sel string, keep protoFields, add func(item []byte) error) error {
	body, err := rc.Get().Namespace(ns).Resource(resource).
		VersionedParams(&metav1.ListOptions{LabelSelector: sel}, scheme.ParameterCodec).
		Stream(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	br := bufio.NewReaderSize(body, 256<<10)
	if head, err := br.Peek(len(protobufMagic)); err != nil || !bytes.Equal(head, protobufMagic) {
		all, err := io.ReadAll(br)
		if err != nil {
			return err
		}
		return itemsFromJSON(resource, all, keep, add)
	}
	_, _ = br.Discard(len(protobufMagic))
	p := &pbReader{r: br}
	fail := func(err error) error { return fmt.Errorf("decode %s list: %w", resource, err) }
	var item, buf []byte
	for { // runtime.Unknown: the list is its field 2 (raw)
		num, typ, err := p.tag()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fail(err)
		}
		if num != 2 || typ != protowire.BytesType {
			if err := p.skip(typ); err != nil {
				return fail(err)
			}
			continue
		}
		size, err := p.uvarint()
		if err != nil {
			return fail(err)
		}
		for end := p.n + int64(size); p.n < end; { // the list: items are field 2
			num, typ, err := p.tag()
			if err != nil {
				return fail(err)
			}
			if num != 2 || typ != protowire.BytesType {
				if err := p.skip(typ); err != nil {
					return fail(err)
				}
				continue
			}
			l, err := p.uvarint()
			if err != nil {
				return fail(err)
			}
			if l > maxItemSize {
				return fail(fmt.Errorf("an item of %d bytes", l))
			}
			if uint64(cap(item)) < l {
				item = make([]byte, l)
			}
			item = item[:l]
			if err := p.read(item); err != nil {
				return fail(err)
			}
			if buf, err = trim(buf[:0], item, keep); err != nil {
				return fail(err)
			}
			if err := add(buf); err != nil {
				return fail(err)
			}
		}
	}
}

// maxItemSize bounds one list item (etcd's own limit is 1.5 MiB).
const maxItemSize = 64 << 20

// pbReader reads protobuf from a stream, counting the bytes consumed.
type pbReader struct {
	r *bufio.Reader
	n int64
}

// ReadByte implements io.ByteReader for binary.ReadUvarint.
func (p *pbReader) ReadByte() (byte, error) {
	b, err := p.r.ReadByte()
	if err == nil {
		p.n++
	}
	return b, err
}

// uvarint reads a varint: io.EOF only when the stream ended before it.
func (p *pbReader) uvarint() (uint64, error) { return binary.ReadUvarint(p) }

// tag reads a field's tag; io.EOF means the message ended cleanly.
func (p *pbReader) tag() (protowire.Number, protowire.Type, error) {
	v, err := p.uvarint()
	return protowire.Number(v >> 3), protowire.Type(v & 7), err
}

func (p *pbReader) read(b []byte) error {
	k, err := io.ReadFull(p.r, b)
	p.n += int64(k)
	return err
}

func (p *pbReader) discard(k uint64) error {
	d, err := p.r.Discard(int(k))
	p.n += int64(d)
	return err
}

// skip reads past the value of a field of wire type typ.
func (p *pbReader) skip(typ protowire.Type) error {
	switch typ {
	case protowire.VarintType:
		_, err := p.uvarint()
		return err
	case protowire.Fixed32Type:
		return p.discard(4)
	case protowire.Fixed64Type:
		return p.discard(8)
	case protowire.BytesType:
		l, err := p.uvarint()
		if err != nil {
			return err
		}
		return p.discard(l)
	}
	return fmt.Errorf("unexpected wire type %d", typ)
}

// itemsFromJSON decodes a JSON list of jobs or pods and hands each item to
// add as trimmed protobuf.
func itemsFromJSON(resource string, body []byte, keep protoFields, add func([]byte) error) error {
	var items []interface{ Marshal() ([]byte, error) }
	switch resource {
	case "jobs":
		var l batchv1.JobList
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("decode %s list: %w", resource, err)
		}
		for i := range l.Items {
			items = append(items, &l.Items[i])
		}
	case "pods":
		var l corev1.PodList
		if err := json.Unmarshal(body, &l); err != nil {
			return fmt.Errorf("decode %s list: %w", resource, err)
		}
		for i := range l.Items {
			items = append(items, &l.Items[i])
		}
	default:
		return fmt.Errorf("list %s: no JSON decoding for it", resource)
	}
	for _, it := range items {
		b, err := it.Marshal()
		if err != nil {
			return err
		}
		t, err := trim(nil, b, keep)
		if err != nil {
			return err
		}
		if err := add(t); err != nil {
			return err
		}
	}
	return nil
}

// trim appends to dst the protoFields of msg that keep names, cutting nested
// messages down as keep says, and returns the extended dst.
func trim(dst, msg []byte, keep protoFields) ([]byte, error) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		sub, ok := keep[num]
		switch {
		case !ok:
		case sub == nil || typ != protowire.BytesType:
			dst = append(dst, msg[:n+m]...)
		default:
			inner, _ := protowire.ConsumeBytes(msg[n:])
			dst = protowire.AppendTag(dst, num, protowire.BytesType)
			// Trim in place, then shift the result right to make room
			// for its length prefix.
			at := len(dst)
			var err error
			if dst, err = trim(dst, inner, sub); err != nil {
				return nil, err
			}
			size := len(dst) - at
			k := protowire.SizeVarint(uint64(size))
			var room [binary.MaxVarintLen64]byte
			dst = append(dst, room[:k]...)
			copy(dst[at+k:], dst[at:at+size])
			protowire.AppendVarint(dst[:at], uint64(size))
		}
		msg = msg[n+m:]
	}
	return dst, nil
}

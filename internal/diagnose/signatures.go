package diagnose

import (
	"regexp"
	"strconv"
	"strings"
)

// This file is the catalogue of log signatures: error lines that ML
// runtimes (PyTorch, NCCL, torchrun, Python itself, servers) print when
// they fail for a known reason. Each is one registered unit with a stable
// ID, what it means, the fix, and the source of its wording. The same
// catalogue is read on both targets: a pod's last log lines on
// Kubernetes, an attempt's or replica's LogTail on the local engine.

// logPattern is a known error signature in a program's last log lines,
// with what it means and how to fix it.
type logPattern struct {
	ID string
	// re matches one line that carries the cause.
	re *regexp.Regexp
	// Permanent is true when retries, restarts and waiting cannot help:
	// the same input fails the same way.
	Permanent bool
	// Message is one sentence; "{who}" is replaced by who failed
	// ("Container C of pod P", "Attempt N of job J", "Replica R of
	// service S") and "{line}" by the lines that carry the cause (the
	// last two that matched, or what pick chose), quoted.
	Message string
	Fix     string
	// Source is where the wording of the lines comes from.
	Source string
	// pick, when set, returns the lines that carry the cause instead of
	// every line re matches (the last Python exception, not an earlier one).
	pick func(lines []string) []string
}

// message returns the pattern's sentence for who, quoting line.
func (p *logPattern) message(who, line string) string {
	return strings.NewReplacer("{who}", who, "{line}", strconv.Quote(strings.TrimSpace(line))).Replace(p.Message)
}

// logPatterns is the catalogue, most specific first: a log that shows a
// CUDA OOM inside a torchrun summary inside a Python traceback is a CUDA
// OOM. It is built while package variables initialise, before the
// analysers' init functions list its IDs.
var logPatterns = signatureCatalogue()

func signatureCatalogue() []*logPattern {
	var logPatterns []*logPattern
	registerSignature := func(p *logPattern) { logPatterns = append(logPatterns, p) }

	registerSignature(&logPattern{
		ID:        "nccl-shm-too-small",
		re:        regexp.MustCompile(`(?i)NCCL.*(unable to allocate shared memory|error while creating shared memory segment|/dev/shm/nccl)|Cannot allocate memory.*/dev/shm/nccl`),
		Permanent: true,
		Message:   "{who} failed in NCCL setup: it cannot create its shared-memory segment in /dev/shm (64Mi in a container by default) — {line}",
		Fix:       "Mount an in-memory emptyDir at /dev/shm: volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 8Gi}}] with volumeMounts: [{name: dshm, mountPath: /dev/shm}] (it counts against the memory limit); NCCL_SHM_DISABLE=1 works around it at a speed cost.",
		Source:    "NCCL's shm transport (src/transport/shm.cc, 'Error while creating shared memory segment'); NVIDIA/nccl issues #290, #1083.",
	})
	registerSignature(&logPattern{
		ID:        "shm-too-small",
		re:        regexp.MustCompile(`(?i)insufficient shared memory|bus error|/dev/shm.*no space left|unable to write to file </torch_`),
		Permanent: true,
		Message:   "{who} died of a Bus error in DataLoader workers: /dev/shm is too small (64Mi in a container by default) for the batches they pass through shared memory.",
		Fix:       "Mount an in-memory emptyDir at /dev/shm: volumes: [{name: dshm, emptyDir: {medium: Memory, sizeLimit: 8Gi}}] with volumeMounts: [{name: dshm, mountPath: /dev/shm}] (it counts against the memory limit), or use num_workers=0.",
		Source:    "torch.utils.data.DataLoader: 'ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).'",
	})
	registerSignature(&logPattern{
		ID:        "gpu-out-of-memory",
		re:        regexp.MustCompile(`(?i)CUDA out of memory|torch\.(cuda\.)?OutOfMemoryError|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|RESOURCE_EXHAUSTED: Out of memory while trying to allocate|No available memory for the cache blocks|status: Internal: out of memory|CUDA_ERROR_OUT_OF_MEMORY`),
		Permanent: true,
		Message:   "{who} ran out of GPU memory (CUDA out of memory); more host memory will not help — {line}",
		Fix:       "Lower the batch size or sequence length, use mixed precision or gradient checkpointing, or ask for a GPU with more memory; for vLLM lower --max-model-len or --max-num-seqs.",
		Source:    "PyTorch's CUDA caching allocator ('torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …'); XLA's RESOURCE_EXHAUSTED; TensorFlow's 'status: Internal: out of memory' and CUDA_ERROR_OUT_OF_MEMORY; vLLM's KV-cache check.",
	})
	registerSignature(&logPattern{
		ID:        "process-killed",
		re:        regexp.MustCompile(`line \d+:\s+\d+\s+Killed\s|^\s*Killed\s*$|killed by signal: Killed`),
		Permanent: true,
		Message:   "{who}: a process inside the container was SIGKILLed — {line} — which, without an OOMKilled reason on the container, is the kernel's OOM killer at the memory limit killing a child process (a trainer under a shell, a DataLoader worker).",
		Fix:       "Raise the container's memory limit (and request) above the job's peak, or lower its memory use (fewer DataLoader workers, smaller batches or prefetch); more GPU memory will not help.",
		Source:    "bash's job report ('line N:  PID Killed  CMD') and torch's DataLoader ('worker (pid N) is killed by signal: Killed') for a SIGKILLed child; exit status 137.",
	})
	registerSignature(&logPattern{
		ID:        "nccl-timeout",
		re:        regexp.MustCompile(`(?i)Watchdog caught collective operation timeout|ProcessGroupNCCL.*(timeout|timed out)|NCCL communicator was aborted|collective operation timeout|DistBackendError.*[Tt]imeout`),
		Permanent: false,
		Message:   "{who} was stopped by NCCL's watchdog: a collective operation waited past the process group's timeout, so one rank stalled, died or never reached it — {line}",
		Fix:       "Find the rank that did not reach the collective (the first failed or slowest pod/attempt: an OOM, a crash, a data-loading stall, uneven batches per rank); raising the timeout only hides a rank that will never arrive. NCCL_DEBUG=INFO and TORCH_NCCL_DUMP_ON_TIMEOUT=1 show which.",
		Source:    "torch ProcessGroupNCCL watchdog ('[Rank N] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=…, OpType=ALLREDUCE, …) ran for 1800000 milliseconds before timing out').",
	})
	registerSignature(&logPattern{
		ID:        "nccl-system-error",
		re:        regexp.MustCompile(`(?i)unhandled system error|ncclSystemError|NCCL error.*(remote process exited|socket|connection)|ncclRemoteError|NET/Socket : .*failed|Bootstrap : no socket interface found`),
		Permanent: true,
		Message:   "{who} failed in NCCL communication setup (a system call or network error between ranks, not a bug in the model) — {line}",
		Fix:       "Run with NCCL_DEBUG=INFO to see the failing call; usual causes are /dev/shm too small (mount a Memory emptyDir), NCCL picking the wrong interface (set NCCL_SOCKET_IFNAME=eth0), or peers that cannot reach each other (NetworkPolicy, hostNetwork, a headless Service for the workers).",
		Source:    "NCCL's result codes (ncclSystemError, ncclRemoteError) as torch reports them: 'NCCL error in: …ProcessGroupNCCL.cpp, unhandled system error'.",
	})
	registerSignature(&logPattern{
		ID:        "gpu-not-visible",
		re:        regexp.MustCompile(`(?i)no CUDA-capable device is detected|Found no NVIDIA driver|NVIDIA-SMI has failed|CUDA driver version is insufficient|torch\.cuda\.is_available\(\) is False|No CUDA GPUs are available`),
		Permanent: true,
		Message:   "{who} sees no usable GPU: it got none, or the node's driver/runtime does not expose it — {line}",
		Fix:       "Ask for the GPU under resources.limits (nvidia.com/gpu: 1), and check that the node runs the NVIDIA container runtime and a driver recent enough for the image's CUDA.",
		Source:    "CUDA runtime error 100 ('no CUDA-capable device is detected'); torch._C._cuda_init ('Found no NVIDIA driver on your system').",
	})
	registerSignature(&logPattern{
		ID:        "port-in-use",
		re:        regexp.MustCompile(`(?i)address already in use|EADDRINUSE|bind\(\) to .* failed|could not bind on any address|The server socket has failed to listen on any local network address`),
		Permanent: true,
		Message:   "{who} cannot listen on its port: another process (or another container of the same pod, or a second server in the same process) already holds it — {line}",
		Fix:       "Give the server a port no other process or container uses (the port passed in $PORT / --port), and stop the stale process that holds it; a torchrun c10d store on MASTER_PORT counts too.",
		Source:    "POSIX bind(2) EADDRINUSE as Python ('OSError: [Errno 98] Address already in use'), Node and torch's TCPStore report it.",
	})
	registerSignature(&logPattern{
		ID:        "file-not-found",
		re:        regexp.MustCompile(`FileNotFoundError|No such file or directory|(?i)does not appear to have a file named|is not a valid model identifier|Can't load .* for '|model repository .* (not found|does not exist)|failed to stat file|Could not find base path`),
		Permanent: true,
		Message:   "{who} cannot open a file it needs (a model or data file): the path does not exist in its filesystem — {line}",
		Fix:       "Make the path exist where the program looks: write the model there first (run the training job that produces it), mount the volume that holds it at that path, or correct the path in the command or environment; restarts and longer probes will not create it.",
		Source:    "Python's FileNotFoundError / ENOENT ('[Errno 2] No such file or directory'); transformers' 'does not appear to have a file named'; Triton's model repository errors; TF Serving's 'Could not find base path'.",
	})
	registerSignature(&logPattern{
		ID: "rendezvous-peer-not-ready",
		re: regexp.MustCompile(`(?i)name or service not known|host not found|temporary failure in name resolution|nodename nor servname|failed to resolve|RendezvousConnectionError|Unable to connect to GCS|Failed to connect to GCS|(TCPStore|rendezvous|init_process_group|c10d).*(connection refused|timed out)`),
		// The start-order race resolves when the master comes up.
		Message: "{who} fails in distributed rendezvous ({line}): it cannot resolve or reach the master (MASTER_ADDR) yet — a start-order race that burns restarts and can exhaust backoffLimit.",
		Fix:     "Add an init container that waits until the master's DNS name resolves and its port accepts connections (e.g. until nc -z $MASTER_ADDR $MASTER_PORT; do sleep 2; done), or use elastic (c10d) rendezvous with a timeout.",
		Source:  "getaddrinfo(3) EAI_NONAME ('Name or service not known'); torch.distributed.elastic.rendezvous.api.RendezvousConnectionError ('The connection to the C10d store has failed').",
	})
	registerSignature(&logPattern{
		ID:      "torch-elastic-child-failed",
		re:      regexp.MustCompile(`ChildFailedError|Root Cause \(first observed failure\)`),
		pick:    childFailure,
		Message: "{who}: torchrun stopped because a worker process failed ({line}); torchrun's summary is the effect, the worker's own error printed before it is the cause.",
		Fix:     "Read the failing rank's output above the ChildFailedError summary (the whole log, not only its tail) and fix that error; exitcode -9 means the worker was SIGKILLed (usually the container's memory limit), and decorating main with @record puts the worker's traceback into the summary.",
		Source:  "torch.distributed.elastic.multiprocessing.errors.ChildFailedError and its 'Root Cause (first observed failure)' table (rank, exitcode, error_file).",
	})
	registerSignature(&logPattern{
		ID:      "python-exception",
		re:      rePythonException,
		pick:    lastException,
		Message: "{who} exited on an uncaught Python exception: {line}",
		Fix:     "Fix the error the exception names (the traceback above it shows where); restarting or retrying runs the same code on the same input.",
		Source:  "CPython's traceback printer: 'Traceback (most recent call last):' … then 'ExceptionType: message' as the last line.",
	})
	return logPatterns
}

// rePythonException matches the last line of a Python traceback: a dotted
// exception class name ending in Error or Exception, optionally a message.
var rePythonException = regexp.MustCompile(`^(?:[a-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception)(?::\s.*)?$`)

// lastException returns the last exception line of lines, when a traceback
// precedes it or the tail starts inside one.
func lastException(lines []string) []string {
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); rePythonException.MatchString(l) {
			return []string{l}
		}
	}
	return nil
}

var reRootCause = regexp.MustCompile(`^\s*(rank|exitcode)\s*:`)

// childFailure quotes the rank and exit code of torchrun's root-cause table.
func childFailure(lines []string) []string {
	var out []string
	for _, l := range lines {
		if reRootCause.MatchString(l) {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(out) == 0 {
		for _, l := range lines {
			if strings.Contains(l, "ChildFailedError") {
				return []string{strings.TrimSpace(l)}
			}
		}
	}
	if len(out) > 4 {
		out = out[:4]
	}
	return out
}

// matchLogs returns the first catalogue pattern found in lines with the
// lines that carry its cause (at most 3, the last ones), or nil.
func matchLogs(lines []string) (*logPattern, []string) {
	for _, p := range logPatterns {
		var quote []string
		if p.pick != nil {
			quote = p.pick(lines)
		} else {
			for _, l := range lines {
				if p.re.MatchString(l) {
					quote = append(quote, strings.TrimSpace(l))
				}
			}
		}
		if len(quote) > 0 {
			return p, lastStrings(quote, 3)
		}
	}
	return nil, nil
}

// quoteLine is the line a finding's message quotes: the last one.
func quoteLine(quote []string) string {
	if len(quote) == 0 {
		return ""
	}
	return strings.Join(quote[max(0, len(quote)-2):], "; ")
}

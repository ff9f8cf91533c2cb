package node

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/petrel-dev/petrel/api/v1alpha1"
)

// KeyFile is the key that seals secret values at rest, in PETREL_HOME
// (32 random bytes, mode 0600, made on first use).
const KeyFile = "secret.key"

// sealedPrefix marks a sealed value: AES-256-GCM, nonce first, base64.
const sealedPrefix = "petrel-sealed:v1:"

// Sealer encrypts the values of secret environment variables before they
// are written anywhere under PETREL_HOME (state.db, a pod's shim.json),
// and decrypts them when a pod starts. Values marked `secret: true` are
// never at rest in clear text.
type Sealer struct {
	path string
	aead cipher.AEAD
}

// LoadSealer reads the key at path, creating it (0600) when missing.
func LoadSealer(path string) (*Sealer, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadSealer(path) // made meanwhile by another process
		}
		if err != nil {
			return nil, fmt.Errorf("create the secret key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("write the secret key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read the secret key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("secret key %s: %d bytes, want 32", path, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{path: path, aead: aead}, nil
}

// Path is the key file.
func (s *Sealer) Path() string { return s.path }

// Seal encrypts v. Sealing a sealed value returns it unchanged.
func (s *Sealer) Seal(v string) string {
	if strings.HasPrefix(v, sealedPrefix) {
		return v
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(v), nil))
}

// Open decrypts a value Seal made; any other value is returned as it is.
func (s *Sealer) Open(v string) (string, error) {
	if !strings.HasPrefix(v, sealedPrefix) {
		return v, nil
	}
	b, err := base64.StdEncoding.DecodeString(v[len(sealedPrefix):])
	n := s.aead.NonceSize()
	if err != nil || len(b) < n {
		return "", errors.New("a sealed secret value is damaged")
	}
	p, err := s.aead.Open(nil, b[:n], b[n:], nil)
	if err != nil {
		return "", fmt.Errorf("a sealed secret value cannot be opened with %s: %w", s.path, err)
	}
	return string(p), nil
}

// SealEnv returns a copy of env with secret values sealed.
func (s *Sealer) SealEnv(env []v1alpha1.EnvVar) []v1alpha1.EnvVar {
	if env == nil {
		return nil
	}
	out := append([]v1alpha1.EnvVar(nil), env...)
	for i := range out {
		if out[i].Secret {
			out[i].Value = s.Seal(out[i].Value)
		}
	}
	return out
}

// OpenEnv opens the secret values of env in place.
func (s *Sealer) OpenEnv(env []v1alpha1.EnvVar) error {
	for i := range env {
		if env[i].Secret {
			v, err := s.Open(env[i].Value)
			if err != nil {
				return fmt.Errorf("env %s: %w", env[i].Name, err)
			}
			env[i].Value = v
		}
	}
	return nil
}

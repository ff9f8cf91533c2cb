package lint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/petrel-dev/petrel/internal/backend"
)

// ConfigFileName is the config file lint reads from the current directory
// when --config is not given.
const ConfigFileName = ".petrel-lint.yaml"

// Config is the content of a .petrel-lint.yaml file:
//
//	disable: [PTL-IMG-001, PTL-HPA-003]
//	severity:
//	  PTL-MEM-002: error
type Config struct {
	// Disable lists rule IDs that are not run.
	Disable []string `yaml:"disable"`
	// Severity overrides rules' severities: error, warning or info.
	Severity map[string]backend.Severity `yaml:"severity"`
}

// LoadConfig reads a config file. A missing file is an error only when
// required (given with --config); otherwise it yields an empty Config.
func LoadConfig(path string, required bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !required && errors.Is(err, os.ErrNotExist) {
			return &Config{}, nil
		}
		return nil, fmt.Errorf("read lint config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("lint config %s: %v (valid keys: disable, a list of rule IDs; severity, a mapping of rule ID to error, warning or info)", path, err)
	}
	return &c, nil
}

package checks

import (
	"bytes"
	"errors"
	"fmt"

	yamlnode "go.yaml.in/yaml/v3"
)

// maxExpanded bounds what a config may expand to through YAML aliases
// before it is decoded: a 256 KiB file of aliases to one long scalar
// expands to gigabytes, which the YAML-to-JSON step would build.
const maxExpanded = 4 << 20

// errExpands says a config expands past maxExpanded.
var errExpands = errors.New("the config expands past 4 MiB through YAML aliases")

// checkExpansion parses config into YAML nodes, where an alias is a
// pointer and nothing is expanded, and adds up the bytes of every scalar
// as the decoded document would hold them, an alias counting its anchor's
// size each time. It stops as soon as the sum passes maxExpanded. A config
// that the node parser rejects passes only when it has no anchors (so no
// aliases): JSON that YAML 1.2 is strict about.
func checkExpansion(config []byte) error {
	var doc yamlnode.Node
	if err := yamlnode.Unmarshal(config, &doc); err != nil {
		if bytes.IndexByte(config, '&') >= 0 {
			return fmt.Errorf("parse the config: %w", err)
		}
		return nil
	}
	sizes := map[*yamlnode.Node]int{}
	var size func(n *yamlnode.Node, depth int) int
	size = func(n *yamlnode.Node, depth int) int {
		if n == nil || depth > 10000 {
			return maxExpanded + 1
		}
		if s, ok := sizes[n]; ok {
			return s
		}
		sizes[n] = maxExpanded + 1 // an alias to itself is too big
		total := len(n.Value) + 4
		if n.Kind == yamlnode.AliasNode {
			total = size(n.Alias, depth+1)
		}
		for _, c := range n.Content {
			if total += size(c, depth+1); total > maxExpanded {
				break
			}
		}
		sizes[n] = min(total, maxExpanded+1)
		return sizes[n]
	}
	if size(&doc, 0) > maxExpanded {
		return errExpands
	}
	return nil
}

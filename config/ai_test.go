package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestExampleDocumentsAIDefaults(t *testing.T) {
	cfg, err := Load(filepath.Join("..", "deploy", "medic.example.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	def := Default()
	cfg.KnowledgeBase.Sources, def.KnowledgeBase.Sources = nil, nil
	cfg.KnowledgeBase.Synonyms, def.KnowledgeBase.Synonyms = nil, nil
	if !reflect.DeepEqual(cfg.KnowledgeBase, def.KnowledgeBase) {
		t.Errorf("knowledge_base: example %+v, default %+v", cfg.KnowledgeBase, def.KnowledgeBase)
	}
	cfg.AI.RedactPatterns, def.AI.RedactPatterns = nil, nil
	if !reflect.DeepEqual(cfg.AI, def.AI) {
		t.Errorf("ai: example %+v, default %+v", cfg.AI, def.AI)
	}
	if cfg.AI.Enabled() || cfg.KBDir() != filepath.Join(cfg.DataDir, "kb") {
		t.Errorf("enabled %v, kb dir %s", cfg.AI.Enabled(), cfg.KBDir())
	}
}

func TestAIEnvironment(t *testing.T) {
	cfg, err := Load("", []string{
		"MEDIC_AI_BASE_URL=http://localhost:11434/v1",
		"MEDIC_AI_CHAT_MODEL=llama3.1:8b",
		"MEDIC_AI_EMBEDDING_MODEL=nomic-embed-text",
		"MEDIC_AI_API_KEY=sk-x",
		"MEDIC_AI_TIMEOUT=20s",
		"MEDIC_AI_REDACT_PATTERNS=ACME-[0-9]+,corp-[a-z]+",
		"MEDIC_KNOWLEDGE_BASE_ALPHA=0.7",
		"MEDIC_KNOWLEDGE_BASE_WEAVIATE_ALPHA=0.25",
		"MEDIC_KNOWLEDGE_BASE_SOURCES=/srv/runbooks,https://github.com/acme/runbooks",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AI.BaseURL != "http://localhost:11434/v1" || cfg.AI.ChatModel != "llama3.1:8b" || cfg.AI.EmbeddingModel != "nomic-embed-text" ||
		cfg.AI.APIKey != "sk-x" || cfg.AI.Timeout != 20*time.Second || len(cfg.AI.RedactPatterns) != 2 || !cfg.AI.Enabled() {
		t.Errorf("ai %+v", cfg.AI)
	}
	if cfg.KnowledgeBase.Alpha != 0.7 || cfg.KnowledgeBase.Weaviate.Alpha != 0.25 || len(cfg.KnowledgeBase.Sources) != 2 {
		t.Errorf("knowledge_base %+v", cfg.KnowledgeBase)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings %v", cfg.Warnings)
	}
}

func TestAIValidationNamesTheField(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"ai: {base_url: 'ftp://x', chat_model: m}", "ai.base_url"},
		{"ai: {base_url: 'http://ollama:11434/v1'}", "ai.chat_model"},
		{"ai: {timeout: 0s}", "ai.timeout"},
		{"ai: {max_retries: -1}", "ai.max_retries"},
		{"ai: {token_budget: 10}", "ai.token_budget"},
		{"ai: {redact_patterns: ['(']}", "ai.redact_patterns[0]"},
		{"knowledge_base: {store: pinecone}", "knowledge_base.store"},
		{"knowledge_base: {store: weaviate}", "knowledge_base.weaviate.url"},
		{"knowledge_base: {alpha: 2}", "knowledge_base.alpha"},
		{"knowledge_base: {weaviate: {collection: lower}}", "knowledge_base.weaviate.collection"},
		{"knowledge_base: {top_k: 0}", "knowledge_base.top_k"},
		{"knowledge_base: {synonyms: [[oom]]}", "knowledge_base.synonyms[0]"},
		{"knowledge_base: {synonyms: [[oom, oomkilled], [a, '--']]}", "knowledge_base.synonyms[1][1]"},
		{"ai: {api_key_file: /nonexistent/key}", "ai.api_key_file"},
	} {
		p := writeConfig(t, c.yaml+"\n")
		if _, err := Load(p, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to name %s", c.yaml, err, c.want)
		}
	}
}

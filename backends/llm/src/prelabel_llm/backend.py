from prelabel import Backend


class LlmBackend(Backend):
    name="llm"
    controls=frozenset({"Choices"})
    def predict(self, tasks, ctx): return []

# fish completion for llm-generate(1).
# Installed as share/fish/vendor_completions.d/llm-generate.fish.

# The chat is read from stdin: no file arguments.
complete -c llm-generate -f
complete -c llm-generate -s h -l help -d 'Show the help and exit'
complete -c llm-generate -s V -l version -d 'Show the version and exit'
complete -c llm-generate -s v -l verbose -d 'Log each request on stderr'
complete -c llm-generate -l log-json -d 'Log as JSON lines on stderr'
complete -c llm-generate -s q -l quiet -d 'Print no warnings'
complete -c llm-generate -l max-input -x -d 'Refuse input over SIZE bytes (default 64M)'
complete -c llm-generate -l text -d 'Read the input as plain text'
complete -c llm-generate -l gpu0 -d 'Use the GPU0 role, the answering server (default)'
complete -c llm-generate -l gpu1 -d 'Use the GPU1 role, the helper server'
complete -c llm-generate -l url -x -d "The role's base URL, or several, comma-separated"
complete -c llm-generate -l model -x -d 'The model to ask for'
complete -c llm-generate -l api -x -a 'ollama openai' -d "The backend's API"
complete -c llm-generate -l connect-timeout -x -d 'Give up connecting after T (default 5s)'
complete -c llm-generate -l first-byte-timeout -x -d 'Give up when no reply starts within T'
complete -c llm-generate -l idle-timeout -x -d 'Give up when the reply stalls for T (default 60s)'
complete -c llm-generate -l timeout -x -d 'Give up when the reply is not done within T'
complete -c llm-generate -l num-ctx -x -d 'The context window to ask an Ollama server for (0 sends none)'
complete -c llm-generate -l json -d 'Write Ollama NDJSON lines instead of text'
complete -c llm-generate -l no-stream -d 'Write the answer only when it is complete'
complete -c llm-generate -l show-thinking -d "Also print the model's thinking, in think tags"

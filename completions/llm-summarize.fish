# fish completion for llm-summarize(1).
# Installed as share/fish/vendor_completions.d/llm-summarize.fish.

# The chat is read from stdin: no file arguments.
complete -c llm-summarize -f
complete -c llm-summarize -s h -l help -d 'Show the help and exit'
complete -c llm-summarize -s V -l version -d 'Show the version and exit'
complete -c llm-summarize -s v -l verbose -d 'Log each stage on stderr'
complete -c llm-summarize -l log-json -d 'Log as JSON lines on stderr'
complete -c llm-summarize -s q -l quiet -d 'Print no warnings'
complete -c llm-summarize -l max-input -x -d 'Refuse input over SIZE bytes (default 64M)'
complete -c llm-summarize -l text -d 'Read the input as plain text'
complete -c llm-summarize -l gpu0 -d 'Use the GPU0 role, the answering server, as the helper'
complete -c llm-summarize -l gpu1 -d 'Use the GPU1 role, the helper server (default)'
complete -c llm-summarize -l url -x -d "The role's base URL, or several, comma-separated"
complete -c llm-summarize -l model -x -d 'The helper model to ask for'
complete -c llm-summarize -l api -x -a 'ollama openai' -d "The backend's API"
complete -c llm-summarize -l connect-timeout -x -d 'Give up connecting after T (default 5s)'
complete -c llm-summarize -l first-byte-timeout -x -d 'Give up when no reply starts within T'
complete -c llm-summarize -l idle-timeout -x -d 'Give up when the reply stalls for T (default 60s)'
complete -c llm-summarize -l timeout -x -d 'Give up when the reply is not done within T'
complete -c llm-summarize -l num-ctx -x -d 'The context window to ask the server for (0 sends none)'
complete -c llm-summarize -l extractive -d 'No model: code, paths, errors and the most informative sentences'
complete -c llm-summarize -l target -x -d 'Summary size in tokens (default 500)'
complete -c llm-summarize -l preserve -x -d 'Tokens of code, paths and errors kept verbatim per summary (default 500)'
complete -c llm-summarize -l keep-last -x -d 'Keep at least the last N messages (default 4)'
complete -c llm-summarize -l summarize-system -d 'Condense system messages too'
complete -c llm-summarize -l summary-only -d 'Summarize all of the chat but its system messages; print the summary alone, as text'
complete -c llm-summarize -l on-helper-failure -x -a 'extractive direct fail' -d 'What to do when the helper fails'

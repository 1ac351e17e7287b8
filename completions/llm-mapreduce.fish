# fish completion for llm-mapreduce(1).
# Installed as share/fish/vendor_completions.d/llm-mapreduce.fish.

# The chat is read from stdin: no file arguments.
complete -c llm-mapreduce -f
complete -c llm-mapreduce -s h -l help -d 'Show the help and exit'
complete -c llm-mapreduce -s V -l version -d 'Show the version and exit'
complete -c llm-mapreduce -s v -l verbose -d 'Log each stage on stderr'
complete -c llm-mapreduce -l log-json -d 'Log as JSON lines on stderr'
complete -c llm-mapreduce -s q -l quiet -d 'Print no warnings and no progress'
complete -c llm-mapreduce -l max-input -x -d 'Refuse input over SIZE bytes (default 64M)'
complete -c llm-mapreduce -l text -d 'Read the input as plain text'
complete -c llm-mapreduce -l gpu0 -d 'Use the GPU0 role, the answering server, as the helper'
complete -c llm-mapreduce -l gpu1 -d 'Use the GPU1 role, the helper server (default)'
complete -c llm-mapreduce -l url -x -d "The role's base URL, or several, comma-separated"
complete -c llm-mapreduce -l model -x -d 'The helper model to ask for'
complete -c llm-mapreduce -l api -x -a 'ollama openai' -d "The backend's API"
complete -c llm-mapreduce -l connect-timeout -x -d 'Give up connecting after T (default 5s)'
complete -c llm-mapreduce -l first-byte-timeout -x -d 'Give up when no reply starts within T'
complete -c llm-mapreduce -l idle-timeout -x -d 'Give up when the reply stalls for T (default 60s)'
complete -c llm-mapreduce -l timeout -x -d 'Give up when a reply is not done within T'
complete -c llm-mapreduce -l num-ctx -x -d 'The context window to ask the server for (0 sends none)'
complete -c llm-mapreduce -l jobs -x -d 'Helper requests in flight at once (default 2)'
complete -c llm-mapreduce -l chunk-tokens -x -d 'Tokens per chunk at most (default 3000)'
complete -c llm-mapreduce -l chunk-target -x -d "Tokens of a chunk's summary (default 300)"
complete -c llm-mapreduce -l max-chunks -x -d "Helper requests one chat may cost (default 256)"
complete -c llm-mapreduce -l target -x -d 'Tokens of the whole summary block (default 4000)'
complete -c llm-mapreduce -l preserve -x -d 'Tokens of code, paths and errors kept verbatim per summary (default 150)'
complete -c llm-mapreduce -l keep-last -x -d 'Keep at least the last N messages (default 4)'
complete -c llm-mapreduce -l summarize-system -d 'Condense system messages too'
complete -c llm-mapreduce -l summary-only -d 'Summarize all of the chat but its system messages; print the summary alone, as text'
complete -c llm-mapreduce -l extractive -d 'No model: the extractive summary of each chunk'
complete -c llm-mapreduce -l on-helper-failure -x -a 'extractive direct fail' -d 'What to do when the helper fails'
complete -c llm-mapreduce -l cache-dir -x -a '(__fish_complete_directories)' -d 'The cache directory (default $XDG_CACHE_HOME/llm-route)'
complete -c llm-mapreduce -l no-cache -d 'Neither read nor write the cache'
complete -c llm-mapreduce -l cache-max -x -d 'Evict the least recently used entries past SIZE (default 64M)'
complete -c llm-mapreduce -l dry-run -d 'List the chunks, their sizes and whether they are cached'

"""Help formatting shared by the argparse command-line tools.

Flags are spelled `--kebab-case`; an older snake_case spelling stays as an
alias after it (`add_argument("--out-dir", "--out_dir", ...)`: argparse takes
the dest from the first long option, so `args.out_dir` is unchanged).
"""

import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
  """`ArgumentDefaultsHelpFormatter` that states each default once.

  Appends "(default: ...)" to a flag's help unless the flag is required, its
  default is None or False (the help says what leaving it out means) or the
  help already states the default. An empty-string default shows as ''.
  """

  def _get_help_string(self, action):
    text = action.help or ""
    if (action.required or action.default is None or action.default is False
        or action.default is argparse.SUPPRESS or "default:" in text or "%(default)" in text):
      return text
    return text + (" (default: '')" if action.default == "" else " (default: %(default)s)")

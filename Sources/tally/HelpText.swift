// Command descriptions (`discussion:`) as a terminal shows them. ArgumentParser keeps
// every line break of a description and wraps each line at 80 columns, so source text
// wrapped at this project's line length printed as ragged lines ("... peak" / "RSS
// (ru_maxrss ..."). Here the source's lines are joined into paragraphs and wrapped
// below ArgumentParser's width, which then leaves them alone.

/// Columns a description line takes at most. ArgumentParser breaks a line that fills
/// its 80 columns (its break must fall within them), so lines stop short of that.
let helpTextWidth = 78

/// `text` with each paragraph's lines joined and wrapped at `width` columns (a word
/// longer than the width gets a line of its own). A blank line separates paragraphs;
/// an indented line (an example command, a column) is kept as it is written.
func helpText(_ text: String, width: Int = helpTextWidth) -> String {
  precondition(width > 0, "help text width is positive")
  var out: [String] = []
  var words: [Substring] = []
  func flush() {
    var line = ""
    for word in words {
      if line.isEmpty {
        line = String(word)
      } else if line.count + 1 + word.count <= width {
        line += " " + word
      } else {
        out.append(line)
        line = String(word)
      }
    }
    if !line.isEmpty { out.append(line) }
    words.removeAll()
  }
  for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
    if line.allSatisfy({ $0 == " " }) {
      flush()
      out.append("")
    } else if line.first == " " {
      flush()
      out.append(String(line))
    } else {
      words.append(contentsOf: line.split(separator: " "))
    }
  }
  flush()
  return out.joined(separator: "\n")
}

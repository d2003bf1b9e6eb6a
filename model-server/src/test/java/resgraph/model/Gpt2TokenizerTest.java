package resgraph.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import org.junit.jupiter.api.Test;

/** GPT-2's tokenizer, checked against ids the original GPT-2 tokenizer gives for these strings. */
class Gpt2TokenizerTest {

  @Test
  void matchesGpt2Ids() {
    assertArrayEquals(new int[] {15496, 995}, Gpt2Tokenizer.encode("Hello world", false));
    assertArrayEquals(new int[] {50256, 464, 2068, 7586, 21831}, Gpt2Tokenizer.encode("The quick brown fox", true));
    assertArrayEquals(new int[] {464, 3797, 3332, 319, 262, 2603, 13}, Gpt2Tokenizer.encode("The cat sat on the mat.", false));
  }

  @Test
  void endOfTextInTheTextIsTheSpecialToken() {
    assertArrayEquals(new int[] {50256, 15496, 50256, 995}, Gpt2Tokenizer.encode("Hello<|endoftext|> world", true));
  }

  @Test
  void tokenStringsDecodeOneTokenAtATime() {
    assertEquals(List.of("<|endoftext|>", "Hello", " world"), Gpt2Tokenizer.tokenStrings(new int[] {50256, 15496, 995}));
    assertEquals("[60000]", Gpt2Tokenizer.decode(60000));
  }
}

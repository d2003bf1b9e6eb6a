package resgraph.model;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/** GPT-2's byte-level BPE (r50k_base), with {@code <|endoftext|>} read as the special token. */
public final class Gpt2Tokenizer {

  public static final int END_OF_TEXT = 50256;
  public static final int VOCAB = 50257;
  private static final String END_OF_TEXT_STRING = "<|endoftext|>";

  private static final Encoding BPE = Encodings.newLazyEncodingRegistry().getEncoding(EncodingType.R50K_BASE);

  private Gpt2Tokenizer() {}

  /**
   * Token ids of a text, {@code <|endoftext|>} first when {@code prependBos}. A literal
   * {@code <|endoftext|>} in the text becomes token 50256, as Hugging Face's GPT-2 tokenizer does.
   */
  public static int[] encode(String text, boolean prependBos) {
    IntArrayList ids = new IntArrayList();
    if (prependBos) ids.add(END_OF_TEXT);
    String[] parts = text.split(Pattern.quote(END_OF_TEXT_STRING), -1);
    for (int i = 0; i < parts.length; i++) {
      if (i > 0) ids.add(END_OF_TEXT);
      IntArrayList part = BPE.encodeOrdinary(parts[i]);
      for (int j = 0; j < part.size(); j++) ids.add(part.get(j));
    }
    return ids.toArray();
  }

  /** Each token's text on its own; bytes that are not whole UTF-8 characters become U+FFFD. */
  public static List<String> tokenStrings(int[] ids) {
    List<String> out = new ArrayList<>(ids.length);
    for (int id : ids) out.add(decode(id));
    return out;
  }

  /** The text of tokens {@code from..} together, as one string (a split character is whole again). */
  public static String decodeAll(int[] ids, int from) {
    IntArrayList list = new IntArrayList(ids.length);
    for (int i = from; i < ids.length; i++) list.add(ids[i]);
    return new String(BPE.decodeBytes(list), StandardCharsets.UTF_8);
  }

  public static String decode(int id) {
    if (id == END_OF_TEXT) return END_OF_TEXT_STRING;
    if (id < 0 || id >= VOCAB) return "[" + id + "]"; // a model may have rows the BPE never emits
    IntArrayList one = new IntArrayList(1);
    one.add(id);
    return new String(BPE.decodeBytes(one), StandardCharsets.UTF_8);
  }
}

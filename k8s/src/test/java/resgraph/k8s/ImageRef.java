package resgraph.k8s;

/** An image reference, [REGISTRY/]PATH[:TAG][@DIGEST], in its parts; tag and digest null when absent. */
record ImageRef(String repository, String tag, String digest) {

  static ImageRef parse(String image) {
    int at = image.indexOf('@');
    String digest = at < 0 ? null : image.substring(at + 1);
    String named = at < 0 ? image : image.substring(0, at);
    int slash = named.lastIndexOf('/');
    int colon = named.lastIndexOf(':');
    // a colon before the last slash is a registry's port, not a tag
    return colon > slash ? new ImageRef(named.substring(0, colon), named.substring(colon + 1), digest) : new ImageRef(named, null, digest);
  }

  /** The image's own name, without registry or path: "resgraph-gpu". */
  String name() {
    return repository.substring(repository.lastIndexOf('/') + 1);
  }

  /** Whether a pull always gets the same image: a digest, or a tag other than "latest". */
  boolean pinned() {
    return digest != null || (tag != null && !tag.equals("latest"));
  }
}

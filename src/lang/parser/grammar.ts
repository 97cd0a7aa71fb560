// The chevrotain grammar of .vlm: pure rules building a CST; `to-ast.ts` turns it into the AST.
// The EBNF in grammar/vlm.ebnf mirrors these rules one for one.

import { CstParser } from "./chevrotain.js";
import * as T from "./lexer.js";

export class VlmParser extends CstParser {
  constructor() {
    super(T.ALL_TOKENS, { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: "onlyOffset" });
    this.performSelfAnalysis();
  }

  /** `item, item, …` with an optional trailing comma; `item` receives the occurrence index to use. */
  private commaList(item: (idx: number) => void): void {
    this.option(9, () => {
      item(1);
      this.many(9, () => {
        this.consume(9, T.Comma);
        item(2);
      });
      this.option(8, () => this.consume(8, T.Comma));
    });
  }

  file = this.RULE("file", () => {
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.constDecl) },
        { ALT: () => this.SUBRULE(this.blockDecl) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
      ]),
    );
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.LBrace);
    this.commaList((i) => this.subrule(i, this.importItem));
    this.CONSUME(T.RBrace);
    this.CONSUME(T.From);
    this.CONSUME(T.StringLiteral);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  importItem = this.RULE("importItem", () => {
    this.CONSUME(T.Identifier, { LABEL: "name" });
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME2(T.Identifier, { LABEL: "alias" });
    });
  });

  constDecl = this.RULE("constDecl", () => {
    this.CONSUME(T.Const);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expression);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  blockDecl = this.RULE("blockDecl", () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.paramList);
    this.SUBRULE(this.memberBody);
  });

  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.paramList));
    this.SUBRULE(this.memberBody);
  });

  paramList = this.RULE("paramList", () => {
    this.CONSUME(T.LParen);
    this.commaList((i) => this.subrule(i, this.paramDef));
    this.CONSUME(T.RParen);
  });

  paramDef = this.RULE("paramDef", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Assign);
      this.SUBRULE(this.expression);
    });
  });

  typeExpr = this.RULE("typeExpr", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LBracket);
      this.commaList((i) => this.subrule(i, this.dim));
      this.CONSUME(T.RBracket);
    });
  });

  // A dimension: an integer expression, a symbol, or a bounded symbol `T <= 3520` (read by the AST builder).
  dim = this.RULE("dim", () => {
    this.SUBRULE(this.expression);
  });

  memberBody = this.RULE("memberBody", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.member));
    this.CONSUME(T.RBrace);
  });

  member = this.RULE("member", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.paramDecl) },
      { ALT: () => this.SUBRULE(this.ifMember) },
      { ALT: () => this.SUBRULE(this.forwardDecl) },
      { ALT: () => this.SUBRULE(this.graphDecl) },
      { ALT: () => this.SUBRULE(this.stageDecl) },
      { ALT: () => this.SUBRULE(this.policyDecl) },
      { ALT: () => this.SUBRULE(this.packageDecl) },
      { ALT: () => this.SUBRULE(this.weightsDecl) },
      { ALT: () => this.SUBRULE(this.componentDecl) },
    ]);
    this.OPTION(() => this.CONSUME(T.Semicolon));
  });

  paramDecl = this.RULE("paramDecl", () => {
    this.OPTION(() => this.CONSUME(T.Identifier, { LABEL: "role" }));
    this.CONSUME(T.Param);
    this.CONSUME2(T.Identifier, { LABEL: "name" });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.listLiteral, { LABEL: "shape" });
    this.OPTION2(() => {
      this.CONSUME(T.Assign);
      this.SUBRULE(this.expression, { LABEL: "init" });
    });
    this.OPTION3(() => this.CONSUME(T.Frozen));
  });

  ifMember = this.RULE("ifMember", () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.memberBody, { LABEL: "then" });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([
        { ALT: () => this.SUBRULE(this.ifMember, { LABEL: "elseIf" }) },
        { ALT: () => this.SUBRULE2(this.memberBody, { LABEL: "else" }) },
      ]);
    });
  });

  forwardDecl = this.RULE("forwardDecl", () => {
    this.CONSUME(T.Forward);
    this.SUBRULE(this.paramList);
    this.SUBRULE(this.body);
  });

  graphDecl = this.RULE("graphDecl", () => {
    this.CONSUME(T.Graph);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.paramList);
    this.SUBRULE(this.body);
  });

  stageDecl = this.RULE("stageDecl", () => {
    this.CONSUME(T.Stage);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.CONSUME(T.Train);
      this.CONSUME2(T.Identifier, { LABEL: "trained" });
      this.MANY2(() => {
        this.CONSUME(T.Comma);
        this.CONSUME3(T.Identifier, { LABEL: "trained" });
      });
      this.OPTION2(() => this.CONSUME(T.Semicolon));
    });
    this.CONSUME(T.RBrace);
  });

  policyDecl = this.RULE("policyDecl", () => {
    this.CONSUME(T.Policy);
    this.OR([
      { ALT: () => this.CONSUME(T.Identifier, { LABEL: "selector" }) },
      { ALT: () => this.CONSUME(T.Frozen, { LABEL: "selector" }) },
    ]);
    this.CONSUME(T.LBrace);
    this.commaList((i) => this.subrule(i, this.policyEntry));
    this.CONSUME(T.RBrace);
  });

  policyEntry = this.RULE("policyEntry", () => {
    this.CONSUME(T.Identifier, { LABEL: "key" });
    this.CONSUME(T.Colon);
    this.SUBRULE(this.expression, { LABEL: "value" });
  });

  // The entries are policy-shaped (`key: value`); which keys a package takes is checked later.
  packageDecl = this.RULE("packageDecl", () => {
    this.CONSUME(T.Package);
    this.CONSUME(T.LBrace);
    this.commaList((i) => this.subrule(i, this.policyEntry));
    this.CONSUME(T.RBrace);
  });

  weightsDecl = this.RULE("weightsDecl", () => {
    this.CONSUME(T.Weights);
    this.OPTION(() => this.CONSUME(T.Identifier, { LABEL: "target" }));
    // Without `from`, the declaration states the checkpoint's layout (its key map) and `--weights` the path.
    this.OPTION3(() => {
      this.CONSUME(T.From);
      this.CONSUME(T.StringLiteral, { LABEL: "path" });
    });
    // `prefix` is contextual, not reserved: it is a common variable name.
    this.OPTION2({
      GATE: () => this.LA(1).image === "prefix",
      DEF: () => {
        this.CONSUME2(T.Identifier, { LABEL: "prefixKeyword" });
        this.CONSUME2(T.StringLiteral, { LABEL: "prefix" });
      },
    });
    this.OPTION4(() => this.SUBRULE(this.weightsMap));
  });

  /** `{ "model.": "", "lm_head.": none, tie "lm_head.weight" = "embed_tokens.weight" }` */
  weightsMap = this.RULE("weightsMap", () => {
    this.CONSUME(T.LBrace);
    this.commaList((i) => this.subrule(i, this.weightsRule));
    this.CONSUME(T.RBrace);
  });

  weightsRule = this.RULE("weightsRule", () => {
    this.OR([
      {
        // `tie` is contextual, like `prefix`.
        GATE: () => this.LA(1).image === "tie",
        ALT: () => {
          this.CONSUME(T.Identifier, { LABEL: "tieKeyword" });
          this.CONSUME(T.StringLiteral, { LABEL: "param" });
          this.CONSUME(T.Assign);
          this.CONSUME2(T.StringLiteral, { LABEL: "source" });
        },
      },
      {
        ALT: () => {
          this.CONSUME3(T.StringLiteral, { LABEL: "from" });
          this.CONSUME(T.Colon);
          this.OR2([
            { ALT: () => this.CONSUME4(T.StringLiteral, { LABEL: "to" }) },
            { ALT: () => this.CONSUME(T.None, { LABEL: "skip" }) },
          ]);
        },
      },
    ]);
  });

  componentDecl = this.RULE("componentDecl", () => {
    this.CONSUME(T.Identifier, { LABEL: "first" });
    this.OPTION(() => this.CONSUME2(T.Identifier, { LABEL: "second" }));
    this.CONSUME(T.Assign);
    this.OPTION2(() => {
      this.CONSUME(T.Repeat);
      this.CONSUME(T.LParen);
      this.SUBRULE(this.expression, { LABEL: "count" });
      this.OPTION3(() => {
        this.CONSUME(T.Comma);
        this.CONSUME3(T.Identifier, { LABEL: "index" });
      });
      this.CONSUME(T.RParen);
    });
    this.SUBRULE2(this.expression, { LABEL: "value" });
    this.OPTION4(() => this.CONSUME(T.Frozen));
  });

  body = this.RULE("body", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.SUBRULE(this.statement);
      this.OPTION(() => this.CONSUME(T.Semicolon));
    });
    this.CONSUME(T.RBrace);
  });

  statement = this.RULE("statement", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.expectStmt) },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.constDecl) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
    ]);
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(T.Return);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.returnItem) });
  });

  returnItem = this.RULE("returnItem", () => {
    this.OPTION(() => {
      this.CONSUME(T.Identifier, { LABEL: "name" });
      this.CONSUME(T.Colon);
    });
    this.SUBRULE(this.expression);
  });

  expectStmt = this.RULE("expectStmt", () => {
    this.CONSUME(T.Expect);
    this.SUBRULE(this.expression);
  });

  ifStmt = this.RULE("ifStmt", () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.body, { LABEL: "then" });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([
        { ALT: () => this.SUBRULE(this.ifStmt, { LABEL: "elseIf" }) },
        { ALT: () => this.SUBRULE2(this.body, { LABEL: "else" }) },
      ]);
    });
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.In);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.body);
  });

  assignStmt = this.RULE("assignStmt", () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.Identifier, { LABEL: "target" }) });
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expression);
  });

  // Expressions are flat: `operand (operator operand)*`. Precedence and associativity are applied
  // by the AST builder (to-ast.ts), which keeps the CST shallow: one node per operand, not one per
  // precedence level, so large files parse several times faster.
  expression = this.RULE("expression", () => {
    this.SUBRULE(this.operand);
    this.MANY(() => {
      this.CONSUME(T.BinaryOperator);
      this.SUBRULE2(this.operand);
    });
  });

  operand = this.RULE("operand", () => {
    this.MANY(() =>
      this.OR([
        { ALT: () => this.CONSUME(T.Minus, { LABEL: "prefix" }) },
        { ALT: () => this.CONSUME(T.Not, { LABEL: "prefix" }) },
      ]),
    );
    this.SUBRULE(this.postfix);
  });

  postfix = this.RULE("postfix", () => {
    this.SUBRULE(this.primary);
    this.MANY(() =>
      this.OR([
        { ALT: () => this.SUBRULE(this.callSuffix, { LABEL: "suffix" }) },
        { ALT: () => this.SUBRULE(this.memberSuffix, { LABEL: "suffix" }) },
        { ALT: () => this.SUBRULE(this.indexSuffix, { LABEL: "suffix" }) },
      ]),
    );
  });

  callSuffix = this.RULE("callSuffix", () => {
    this.CONSUME(T.LParen);
    this.commaList((i) => this.subrule(i, this.argument));
    this.CONSUME(T.RParen);
  });

  argument = this.RULE("argument", () => {
    this.OPTION(() => {
      this.CONSUME(T.Identifier, { LABEL: "name" });
      // `name=value` (Python's spelling) parses, so the builder can report it once with the fix.
      this.OR([{ ALT: () => this.CONSUME(T.Colon) }, { ALT: () => this.CONSUME(T.Assign, { LABEL: "pythonStyle" }) }]);
    });
    this.SUBRULE(this.expression);
  });

  memberSuffix = this.RULE("memberSuffix", () => {
    this.CONSUME(T.Dot);
    this.CONSUME(T.Identifier);
  });

  indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(T.LBracket);
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.sliceItem) });
    this.CONSUME(T.RBracket);
  });

  sliceItem = this.RULE("sliceItem", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Colon, { LABEL: "firstColon" });
          this.SUBRULE(this.sliceTail);
        },
      },
      {
        ALT: () => {
          this.SUBRULE(this.expression, { LABEL: "start" });
          this.OPTION(() => {
            this.CONSUME2(T.Colon, { LABEL: "firstColon" });
            this.SUBRULE2(this.sliceTail);
          });
        },
      },
    ]);
  });

  // After the first ':' of a slice: optional stop, then optional ':' step.
  sliceTail = this.RULE("sliceTail", () => {
    this.OPTION(() => this.SUBRULE(this.expression, { LABEL: "stop" }));
    this.OPTION2(() => {
      this.CONSUME(T.Colon);
      this.OPTION3(() => this.SUBRULE2(this.expression, { LABEL: "step" }));
    });
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Float) },
      { ALT: () => this.CONSUME(T.Integer) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.None) },
      { ALT: () => this.CONSUME(T.Identifier) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression);
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.SUBRULE(this.listLiteral) },
    ]);
  });

  listLiteral = this.RULE("listLiteral", () => {
    this.CONSUME(T.LBracket);
    this.commaList((i) => this.subrule(i, this.expression));
    this.CONSUME(T.RBracket);
  });
}

/** One parser instance: building it runs chevrotain's grammar analysis, which is not free. */
export const vlmParser = new VlmParser();
